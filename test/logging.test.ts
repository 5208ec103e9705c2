import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { OperationService, OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ConnectionOutcome, ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { TokenService } from "../gen/axion/infrastructure/v1/token_service_pb.js";
import { type RunningDevServer, startDevServer } from "../temporal/dev-server.js";
import { testCredentialsKey } from "./support/api.js";
import { ed25519KeyPair } from "./support/keys.js";
import { watchUntilEnd } from "./support/operations.js";
import { freePort } from "./support/ports.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";
import { type ServiceProcess, startServiceProcess, waitForHealthy, waitForPolling } from "./support/service-process.js";
import { buildImage, DOCKER_PREINSTALLED, downHosts, type Fleet, hostExec, upHosts } from "./support/testhosts.js";

/**
 * The service as operators run it (`main.ts api` and `main.ts worker`, LOG_LEVEL=debug) bootstraps a real host
 * with a passphrase-protected key after a password login; then every line both processes wrote is read.
 */
const prefix = "plogs";
const adminToken = "logging-test-admin-token-0001";
const passphrase = "logging-test-passphrase-7f3a";
const rootPassword = "logging-test-root-password-9c2e";
const providerPassword = "logging-test-time4vps-password-1b5d";
const key = ed25519KeyPair(passphrase);
const requestId = "logtest-configure-0001";
const secrets: Record<string, string> = {
  "admin token": adminToken,
  passphrase,
  "root password": rootPassword,
  "provider password": providerPassword,
  "credentials key": testCredentialsKey,
  // The key's base64 body, line by line: any line of it in a log would be a leak.
  ...Object.fromEntries(
    key.privateKey
      .split("\n")
      .filter((l) => l.length > 40 && !l.startsWith("-----"))
      .map((l, i) => [`private key line ${i + 1}`, l]),
  ),
};

let pg: TestPostgres;
let dev: RunningDevServer;
let fleet: Fleet;
let logDir: string;
let keyDir: string;
let api: ServiceProcess;
let worker: ServiceProcess;
let operationId = "";
let workflowId = "";
let echoedRequestId: string | null = null;
let generatedRequestId: string | null = null;
type Line = Record<string, unknown>;
let lines: { raw: string; json: Line | undefined; from: string }[] = [];

function connectClients(baseUrl: string, token: string) {
  const transport = createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      },
    ],
  });
  return {
    clusters: createClient(ClusterService, transport),
    servers: createClient(ServerService, transport),
    operations: createClient(OperationService, transport),
    tokens: createClient(TokenService, transport),
  };
}

/** A call refused as InvalidArgument: its error response carries the request id too. */
async function invalidCall(servers: Client<typeof ServerService>) {
  await servers.getServer({ id: "not-a-uuid" }).catch(() => undefined);
}

function parse(raw: string): Line | undefined {
  try {
    const value = JSON.parse(raw);
    return value && typeof value === "object" ? value : undefined;
  } catch {
    return undefined;
  }
}

describe("a bootstrap as operators run it (API and worker processes, LOG_LEVEL=debug)", { timeout: 15 * 60_000 }, () => {
  before(async () => {
    execFileSync("bash", ["scripts/build-agent.sh"], { stdio: ["ignore", "ignore", "inherit"], timeout: 10 * 60_000 });
    buildImage();
    downHosts(prefix);
    keyDir = mkdtempSync(join(tmpdir(), "axion-logging-key-"));
    writeFileSync(join(keyDir, "id"), key.privateKey, { mode: 0o600 });
    writeFileSync(join(keyDir, "id.pub"), key.publicKey);
    fleet = upHosts(prefix, 1, "fresh", [...DOCKER_PREINSTALLED, "--pubkey", join(keyDir, "id.pub"), "--root-password", rootPassword]);
    logDir = mkdtempSync(join(tmpdir(), "axion-logging-"));
    pg = await startPostgres();
    dev = await startDevServer(mkdtempSync(join(tmpdir(), "axion-logging-temporal-")), {
      port: await freePort(),
      uiPort: await freePort(),
      headless: true,
    });
    const port = await freePort();
    const env = {
      DATABASE_URL: pg.url,
      TEMPORAL_ADDRESS: dev.address,
      TEMPORAL_NAMESPACE: dev.spec.namespace,
      TEMPORAL_TASK_QUEUE: "axion-logging-test",
      CREDENTIALS_KEY: testCredentialsKey,
      AXION_ADMIN_TOKEN: adminToken,
      TIME4VPS_USERNAME: "logging-test",
      TIME4VPS_PASSWORD: providerPassword,
      SSH_CONNECT_TIMEOUT_MS: "4000",
      AGENT_BINARY_DIR: join(process.cwd(), "agent", "dist"),
      AGENT_API_URL: `http://${fleet.gateway}:${port}`,
      AGENT_HEARTBEAT_INTERVAL: "1",
      LOG_LEVEL: "debug",
    };
    api = startServiceProcess("api", { ...env, PORT: String(port) }, logDir, "api");
    await waitForHealthy(`http://127.0.0.1:${port}`, api);
    worker = startServiceProcess("worker", { ...env, PORT: "0" }, logDir, "worker");
    await waitForPolling(worker);

    const admin = connectClients(`http://127.0.0.1:${port}`, adminToken);
    const ownerToken = (await admin.tokens.createToken({ label: "logging test" })).bearerToken;
    secrets["owner token"] = ownerToken;
    const alice = connectClients(`http://127.0.0.1:${port}`, ownerToken);
    const host = fleet.hosts[0]!;
    const clusterId = (await alice.clusters.createCluster({ name: "logs" })).cluster!.id;
    const server = (
      await alice.servers.createServer(
        { clusterId, name: "logs-1", host: host.ip, credential: { method: { case: "password", value: rootPassword } } },
        { onHeader: (h) => (generatedRequestId = h.get("x-request-id")) },
      )
    ).server!;
    const tested = await alice.servers.testServerConnection({ id: server.id });
    assert.equal(tested.outcome, ConnectionOutcome.OK, tested.message);
    await alice.servers.updateServer({
      id: server.id,
      credential: { method: { case: "privateKey", value: { key: key.privateKey, passphrase } } },
    });
    const started = await alice.servers.configureServer(
      { id: server.id },
      { headers: { "x-request-id": requestId }, onHeader: (h) => (echoedRequestId = h.get("x-request-id")) },
    );
    operationId = started.operation!.id;
    workflowId = started.operation!.workflowId;
    const op = await watchUntilEnd(alice.operations, operationId);
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
    secrets["agent token"] = JSON.parse(hostExec(host.name, "cat /etc/axion-agent/config.json")).token;
    await invalidCall(alice.servers);

    for (const p of [api, worker]) {
      const exited = new Promise((r) => p.child.once("exit", r));
      p.signal("SIGTERM");
      await exited;
    }
    lines = [api, worker].flatMap((p) =>
      p
        .log()
        .split("\n")
        .filter((raw) => raw.trim() !== "")
        .map((raw) => ({ raw, from: p.role, json: parse(raw) })),
    );
  });

  after(async () => {
    await api?.kill();
    await worker?.kill();
    await dev?.stop();
    await pg?.stop();
    downHosts(prefix);
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
    if (logDir && !process.env.AXION_KEEP_TEST_LOGS) rmSync(logDir, { recursive: true, force: true });
    else if (logDir) console.error(`logging test process logs: ${logDir}`);
  });

  test("no log line of the API or the worker holds a secret used in the bootstrap, raw or base64", () => {
    // What was scanned must cover every place a secret passed: the RPCs that carried them, the
    // bootstrap's activities that used them, and the debug lines (their count varies with timing).
    const procedures = new Set(lines.filter((l) => l.from === "api").map((l) => l.json?.procedure));
    for (const rpc of ["TokenService/CreateToken", "ServerService/CreateServer", "ServerService/UpdateServer"])
      assert.ok(procedures.has(`axion.infrastructure.v1.${rpc}`), `the API logged ${rpc} (${lines.length} lines in all)`);
    const activities = new Set(
      lines.filter((l) => l.from === "worker" && l.json?.workflowId === workflowId).map((l) => l.json?.activityType),
    );
    for (const activity of ["connect", "installAgent"]) assert.ok(activities.has(activity), `the worker logged ${activity}`);
    assert.ok(
      lines.some((l) => l.json?.level === "debug"),
      "debug lines are among them",
    );
    assert.ok(secrets["agent token"] && secrets["owner token"], "the tokens are known");
    for (const [name, secret] of Object.entries(secrets)) {
      const forms = [secret, Buffer.from(secret).toString("base64"), Buffer.from(secret).toString("base64url")];
      for (const line of lines) {
        for (const form of forms) assert.ok(!line.raw.includes(form), `${name} found in the ${line.from} log: ${line.raw.slice(0, 300)}`);
      }
    }
  });

  test("every line is JSON with level, time and msg; the Temporal SDK's lines included", () => {
    for (const line of lines) {
      assert.ok(line.json, `a ${line.from} line is not JSON: ${line.raw.slice(0, 300)}`);
      assert.match(String(line.json.level), /^(trace|debug|info|warn|error|fatal)$/, line.raw);
      assert.ok(!Number.isNaN(Date.parse(String(line.json.time))), line.raw);
      assert.equal(typeof line.json.msg, "string", line.raw);
    }
    const sdk = lines.filter((l) => l.from === "worker" && l.json?.sdkComponent);
    assert.ok(
      sdk.some((l) => l.json?.sdkComponent === "worker"),
      "the worker's own lines go through the logger",
    );
    assert.ok(
      sdk.some((l) => l.json?.msg === "Activity completed" && l.json.activityType),
      "activity lines go through the logger",
    );
    assert.ok(
      sdk.some((l) => l.json?.msg === "Workflow completed" && l.json.workflowType),
      "workflow lines (through the logger sink) go through the logger",
    );
  });

  test("every line the operation's workflow and activities write carries its operation id, workflow id and activity type", () => {
    const ofRun = lines.filter((l) => l.json?.workflowId === workflowId && l.from === "worker");
    const activityLines = ofRun.filter((l) => l.json?.activityType);
    assert.ok(activityLines.length > 10, `the bootstrap's activities logged (${activityLines.length} lines)`);
    const types = new Set(activityLines.map((l) => l.json?.activityType));
    for (const t of ["connect", "ensureDocker", "installAgent"]) assert.ok(types.has(t), `${t} logged`);
    // The SDK writes "Activity started" before any interceptor has seen the activity's headers.
    for (const line of ofRun.filter((l) => l.json?.msg !== "Activity started")) {
      assert.equal(line.json?.operationId, operationId, `a line of the operation without its id: ${line.raw.slice(0, 300)}`);
    }
    assert.ok(
      ofRun.some((l) => l.json?.msg === "Workflow completed"),
      "workflow lines are among them",
    );
  });

  test("the lines of one RPC carry one request id: the caller's when well formed, else a generated one; echoed in the response", () => {
    assert.equal(echoedRequestId, requestId);
    assert.match(generatedRequestId ?? "", /^[0-9a-f-]{36}$/);
    const configure = lines.filter((l) => l.json?.requestId === requestId);
    assert.deepEqual(
      configure.map((l) => l.json?.msg),
      ["rpc started", "rpc finished"],
    );
    assert.equal(configure[1]?.json?.procedure, "axion.infrastructure.v1.ServerService/ConfigureServer");
    const refused = lines.find((l) => l.json?.msg === "rpc finished" && l.json?.code === "InvalidArgument");
    assert.ok(refused?.json?.requestId, "a refused call has its request id too");
    const started = lines.find((l) => l.json?.msg === "rpc started" && l.json.requestId === refused.json?.requestId);
    assert.ok(started, "its start line has the same id");
  });
});

test("a secret-shaped field is redacted at any depth, even when a caller passes one", () => {
  const script = `import { log } from "./core/kernel/log.ts";
log.info("redaction check", { serverId: "s1", credential: { privateKey: { key: "sekrit-k1", passphrase: "sekrit-p1" } },
  nested: { deeper: { password: "sekrit-p2", authorization: "Bearer sekrit-t1" } }, list: [{ token: "sekrit-t2" }], taskToken: "sekrit-t3" });`;
  const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" });
  const line = JSON.parse(out.trim());
  assert.equal(line.serverId, "s1");
  for (const secret of ["k1", "p1", "p2", "t1", "t2", "t3"].map((s) => `sekrit-${s}`))
    assert.ok(!out.includes(secret), `${secret} in ${out}`);
  assert.equal(line.credential, "[redacted]");
  assert.equal(line.nested.deeper.password, "[redacted]");
  assert.equal(line.list[0].token, "[redacted]");
});
