import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { freePort } from "./support/ports.js";
import { promtoolCheckMetrics } from "./support/promtool.js";

/** The README's example block, run as written against `npm start`'s embedded defaults. */
const readme = readFileSync("README.md", "utf8");
const example = /<!-- example[^>]*-->\s*```bash\n([\s\S]*?)```/.exec(readme)?.[1];
const token = "service-test-admin-token-0001";

let service: ChildProcess;
let dataDir: string;
let api: string;
let output = "";

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "axion-service-"));
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  service = spawn(process.execPath, ["--import", "tsx", "app/main.ts"], {
    env: { ...process.env, AXION_DATA_DIR: dataDir, PORT: String(port), AXION_ADMIN_TOKEN: token, DATABASE_URL: "", TEMPORAL_ADDRESS: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  service.stdout?.on("data", (d) => {
    output += d;
  });
  service.stderr?.on("data", (d) => {
    output += d;
  });
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (service.exitCode !== null) throw new Error(`service exited: ${output}`);
    const ok = await fetch(`${api}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`service did not become healthy: ${output}`);
    await new Promise((r) => setTimeout(r, 500));
  }
});

after(async () => {
  if (service && service.exitCode === null) {
    const exited = new Promise((r) => service.once("exit", r));
    service.kill("SIGTERM");
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

test("the README example creates a cluster and a server and lists them", () => {
  assert.ok(example, "README has an example block");
  const out = execFileSync("bash", ["-euo", "pipefail", "-c", example], {
    env: { ...process.env, API: api, TOKEN: token },
    encoding: "utf8",
  });
  const lines = out.trim().split("\n");
  const server = JSON.parse(lines[0] as string).server;
  assert.equal(server.name, "web-1");
  assert.equal(server.status, "SERVER_STATUS_PENDING");
  assert.equal(JSON.parse(lines[1] as string).clusters[0].name, "prod");
  assert.equal(JSON.parse(lines[2] as string).servers[0].id, server.id);
  assert.ok(!out.includes("change-me"), "the password never comes back");
});

test("the embedded defaults live in the data folder, with a generated owner-only key", () => {
  const files = execFileSync("ls", [dataDir], { encoding: "utf8" }).split("\n");
  for (const f of ["pglite", "temporal", "credentials.key"]) assert.ok(files.includes(f), f);
  assert.match(output, /CREDENTIALS_KEY is not set/);
  assert.ok(!output.includes(readFileSync(join(dataDir, "credentials.key"), "utf8").trim()), "the key is not logged");
  assert.ok(!output.includes(token), "the admin token is not logged");
});

/** A request over HTTP/2 (h2c with prior knowledge, as gRPC clients speak): status and body. */
function http2Request(method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = connect(api);
    session.on("error", reject);
    const stream = session.request({ ":method": method, ":path": path });
    let status = 0;
    let body = "";
    stream.setEncoding("utf8");
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
    });
    stream.on("data", (chunk) => {
      body += chunk;
    });
    stream.on("end", () => {
      session.close();
      resolve({ status, body });
    });
    stream.on("error", reject);
    stream.end();
  });
}

test("HEAD /healthz and HEAD /metrics answer as GET does, without a body (HEAD /healthz over HTTP/2 too)", async () => {
  for (const path of ["/healthz", "/metrics"]) {
    const get = await fetch(`${api}${path}`);
    assert.equal(get.status, 200, `GET ${path}`);
    const head = await fetch(`${api}${path}`, { method: "HEAD" });
    assert.deepEqual(
      [head.status, head.headers.get("content-type"), await head.text()],
      [200, get.headers.get("content-type"), ""],
      `HEAD ${path}`,
    );
  }
  assert.deepEqual(await http2Request("HEAD", "/healthz"), { status: 200, body: "" }, "HEAD /healthz over HTTP/2");
});

test("the API's /metrics scrape passes promtool check metrics", async () => {
  const scraped = await fetch(`${api}/metrics`);
  assert.equal(scraped.status, 200);
  assert.deepEqual(await promtoolCheckMetrics(await scraped.text()), { code: 0, output: "" });
});

test("SIGTERM stops the service cleanly", async () => {
  const exited = new Promise<number | null>((r) => service.once("exit", (code) => r(code)));
  service.kill("SIGTERM");
  assert.equal(await exited, 0);
});
