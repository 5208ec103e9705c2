import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setServerStatus } from "../core/inventory/server-status.js";
import { hasUnsafeCharacters } from "../core/kernel/text.js";
import { finishOperation, startOperation } from "../core/operations/operations.js";
import { startTestApi, type TestApi } from "./support/api.js";

/**
 * What a managed host says reaches the operator's terminal escaped: a step detail, an operation
 * error or a status reason holding OSC 52 (writes the clipboard), ESC [2J (clears the screen), a
 * C1 CSI or U+202E prints as visible \uXXXX text, in every view and in the one-line error; the
 * JSON output keeps the exact value. The `axion` command runs as a subprocess against a real API.
 */
const bin = join(process.cwd(), "cli", "bin", "axion.mjs");
const osc52 = "\u001b]52;c;ZWNobyBwd25lZA==\u0007";
const hostile = `${osc52}disk full\u001b[2J\u009b31m\u202eevil`;
/** Output is lines: newlines and tabs are its own. */
const unsafe = { test: (text: string) => hasUnsafeCharacters(text, { multiline: true }) };

let api: TestApi;
let home: string;
let token: string;
let operationId: string;

function axion(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [bin, ...args],
      { cwd: tmpdir(), env: { ...process.env, XDG_CONFIG_HOME: home, AXION_API: api.baseUrl, AXION_TOKEN: token, NO_COLOR: "1" } },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end();
  });
}

before(async () => {
  api = await startTestApi();
  home = mkdtempSync(join(tmpdir(), "axion-cli-outside-"));
  const owner = await api.newOwner();
  token = owner.token;
  const clients = api.clients(token);
  const clusterId = (await clients.clusters.createCluster({ name: "terminal" })).cluster!.id;
  const server = (
    await clients.servers.createServer({
      clusterId,
      name: "web-1",
      host: "10.67.0.1",
      credential: { method: { case: "password", value: "secret" } },
    })
  ).server!;
  // What a compromised host can make the orchestrator store: a step detail and an error of its own words.
  const op = await startOperation(api.database.db, { id: owner.ownerId } as never, server.id, "recovery");
  operationId = op.id;
  const startedAt = new Date().toISOString();
  await finishOperation(api.database.db, op.id, {
    status: "FAILED",
    error: `docker: ${hostile}`,
    result: { steps: [{ name: "diagnose", status: "failed", detail: hostile, startedAt, durationMs: 12 }] },
  });
  await setServerStatus(api.database.db, server.id, "UNREACHABLE", `ssh: ${hostile}`, { by: "fleet_check" });
});

after(async () => {
  await api?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

for (const [args, showsHostText] of [
  [["ops", "get", "OPERATION"], true],
  [["ops", "list", "web-1"], true],
  [["servers", "get", "web-1"], true],
  [["servers", "list"], false],
] as const) {
  test(`axion ${args.join(" ")}: a host's escape sequences are printed as visible text, never sent to the terminal`, async () => {
    const r = await axion(args.map((a) => (a === "OPERATION" ? operationId : a)));
    assert.equal(r.code, 0, r.stderr);
    const output = r.stdout + r.stderr;
    assert.ok(!unsafe.test(output), `no raw control character in: ${JSON.stringify(output)}`);
    if (showsHostText) assert.match(output, /\\u001b/, "the escape is shown as text");
  });
}

test("the one-line error of a failed operation is escaped too", async () => {
  const r = await axion(["ops", "get", operationId]);
  const failed = await axion(["ops", "watch", operationId]);
  for (const output of [r.stdout + r.stderr, failed.stdout + failed.stderr]) {
    assert.ok(!unsafe.test(output), `no raw control character in: ${JSON.stringify(output)}`);
  }
  assert.match(failed.stderr, /docker: \\u001b\]52/, `the error names what the host said, escaped: ${failed.stderr}`);
});

test("JSON output keeps the exact value, with no raw control character on the terminal", async () => {
  const r = await axion(["ops", "get", operationId, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!unsafe.test(r.stdout), `no raw control character in: ${JSON.stringify(r.stdout)}`);
  const document = JSON.parse(r.stdout) as { operation: { steps: { detail: string }[]; error: string } };
  assert.equal(document.operation.steps[0]?.detail, hostile, "a JSON reader gets the value as stored");
  assert.equal(document.operation.error, `docker: ${hostile}`);
});
