import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startTestApi, type TestApi } from "./support/api.js";

/**
 * A token's lifetime has one spelling, `--expires-in 30m|12h|7d`, in `axion tokens create` and in
 * `npm run owner:create`; the CLI's old `--expires` still works, with a one-line notice on stderr.
 */
const bin = join(process.cwd(), "cli", "bin", "axion.mjs");
const hour = 3_600_000;
const notice = "axion: --expires is deprecated, use --expires-in (same values)\n";

let api: TestApi;
let home: string;
let token: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const [file, ...args] = command as [string, ...string[]];
    const child = execFile(file, args, { env: { ...process.env, NO_COLOR: "1", ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end();
  });
}

const axion = (args: string[]) =>
  run([process.execPath, bin, ...args], { XDG_CONFIG_HOME: home, AXION_API: api.baseUrl, AXION_TOKEN: token });

/** Asserts `expiry` (RFC 3339 or ISO text) lies `ms` after a moment between `start` and now. */
function assertExpiresIn(expiry: string, ms: number, start: number): void {
  const at = Date.parse(expiry);
  assert.ok(at >= start + ms - 1000 && at <= Date.now() + ms, `${expiry} is ${ms} ms after the call`);
}

before(async () => {
  api = await startTestApi();
  token = (await api.newOwner()).token;
  home = mkdtempSync(join(tmpdir(), "axion-token-lifetime-"));
});

after(async () => {
  await api?.close();
  rmSync(home, { recursive: true, force: true });
});

test("axion tokens create --expires-in sets the expiry; the old --expires still works with a one-line notice", async () => {
  const start = Date.now();
  const current = await axion(["tokens", "create", "ci", "--expires-in", "12h", "-o", "json"]);
  assert.equal(current.code, 0, current.stderr);
  assert.equal(current.stderr, "");
  assertExpiresIn(JSON.parse(current.stdout).token.expire_time, 12 * hour, start);

  const old = await axion(["tokens", "create", "legacy", "--expires", "7d", "-o", "json"]);
  assert.equal(old.code, 0, old.stderr);
  assert.equal(old.stderr, notice);
  assertExpiresIn(JSON.parse(old.stdout).token.expire_time, 7 * 24 * hour, start);

  const help = await axion(["tokens", "create", "--help"]);
  assert.match(help.stdout, /--expires-in\s+lifetime: 30m, 12h, 7d/);
  assert.doesNotMatch(help.stdout, /--expires(?!-in)/, "the old spelling is not offered");
});

test("a lifetime not in 30m|12h|7d form is refused in one line naming the flag, and no token is made", async () => {
  const listedBefore = (await axion(["tokens", "list", "-o", "json"])).stdout;
  for (const [args, flag] of [
    [["--expires-in", "5x"], "--expires-in"],
    [["--expires-in", "0d"], "--expires-in"],
    [["--expires-in", "3651d"], "--expires-in"],
    [["--expires", "90"], "--expires"],
  ] as const) {
    const r = await axion(["tokens", "create", "bad", ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    const lines = r.stderr.replace(notice, "").trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0] as string,
      new RegExp(`${flag}: a whole number of minutes, hours or days \\(30m, 12h, 7d\\), at most 3650d, not "`),
    );
  }
  const both = await axion(["tokens", "create", "bad", "--expires", "1d", "--expires-in", "2d"]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /give --expires-in only/);
  assert.equal((await axion(["tokens", "list", "-o", "json"])).stdout, listedBefore);
});

test("npm run owner:create reads --expires-in by the same rule, before it opens the database", async () => {
  const ownerCreate = (args: string[]) => run([process.execPath, "--import", "tsx", "app/create-owner.ts", ...args]);
  const refused = await ownerCreate(["acme", "--expires-in", "3651d"]);
  assert.equal(refused.code, 2);
  assert.equal(refused.stderr, "--expires-in: a whole number of minutes, hours or days (30m, 12h, 7d), at most 3650d\n");
  const usage = await ownerCreate([]);
  assert.match(usage.stderr, /\[--expires-in 30m\|12h\|7d\]/);
});
