import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import postgres from "postgres";
import { OperationService, OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ConnectionOutcome, ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { testCredentialsKey } from "./support/api.js";
import { holdCommand, holdDpkgConfigure } from "./support/host-gate.js";
import { ed25519KeyPair } from "./support/keys.js";
import { watchUntilEnd } from "./support/operations.js";
import { freePort } from "./support/ports.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, downHosts, type Fleet, hostExec, upHosts } from "./support/testhosts.js";

/** Readiness and drain of the service as operators run it (`main.ts api|worker`), each in its own process, SIGTERMed for real. */
const prefix = "pdrain";
const orchestratorKey = ed25519KeyPair().publicKey.trim();
/** The readiness answer is shared this long (observability/readiness.ts): a probe after it sees the new state. */
const READINESS_CACHE_MS = 1000;
let pg: TestPostgres;
let harness: ProvisioningHarness;
let fleet: Fleet;

interface ServiceProcess {
  child: ChildProcess;
  /** Resolves on the first stdout line matching `pattern` (seen before or after the call). */
  line(pattern: RegExp): Promise<string>;
  exited: Promise<number | null>;
}

function startProcess(role: "api" | "worker", env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "app/main.ts", role], {
    env: {
      ...process.env,
      DATABASE_URL: pg.url,
      TEMPORAL_ADDRESS: harness.dev.address,
      TEMPORAL_NAMESPACE: harness.dev.spec.namespace,
      TEMPORAL_TASK_QUEUE: harness.taskQueue,
      CREDENTIALS_KEY: testCredentialsKey,
      ORCHESTRATOR_SSH_PUBLIC_KEY: orchestratorKey,
      SSH_CONNECT_TIMEOUT_MS: "4000",
      LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const seen: string[] = [];
  const waiting: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let rest = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) {
      seen.push(line);
      for (const w of waiting.filter((w) => w.pattern.test(line))) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    exited,
    line: (pattern) => {
      const found = seen.find((l) => pattern.test(l));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        waiting.push({ pattern, resolve });
        void exited.then((code) => reject(new Error(`${role} exited (${code}) before logging ${pattern}`)));
      });
    },
  };
}

async function stopProcess(p: ServiceProcess | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGKILL");
  await p.exited;
}

function ownerClients(port: number, token: string) {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  // gRPC over HTTP/2, one session for every call of these clients (as the CLI's).
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}`, interceptors: [auth] });
  return { servers: createClient(ServerService, transport), operations: createClient(OperationService, transport) };
}

async function readyz(port: number, method = "GET"): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`, { method });
  return { status: res.status, body: await res.text() };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  buildImage();
  downHosts(prefix);
  fleet = upHosts(prefix, 1, "fresh");
  pg = await startPostgres();
  harness = await startProvisioningHarness({ databaseUrl: pg.url, noWorker: true });
});

after(async () => {
  await harness?.close();
  await pg?.stop();
  downHosts(prefix);
});

test("/readyz: 200 when ready, 503 naming the database while PostgreSQL is down and the migrations while behind, 200 again", async () => {
  const port = await freePort();
  const api = startProcess("api", { PORT: String(port) });
  const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
  try {
    await api.line(/API listening/);
    assert.deepEqual(await readyz(port), { status: 200, body: '{"status":"ready"}' });
    assert.equal((await readyz(port, "HEAD")).status, 200, "HEAD as GET");

    await pg.halt();
    await pause(READINESS_CACHE_MS + 100);
    const down = await readyz(port);
    assert.equal(down.status, 503);
    assert.deepEqual(JSON.parse(down.body), { status: "not ready", notReady: ["database"] });
    assert.doesNotMatch(down.body, /postgres:|127\.0\.0\.1|axion@/, "no address or connection string");
    assert.equal((await readyz(port, "HEAD")).status, 503, "HEAD as GET");
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 503, "/healthz still answers on its own");

    await pg.restart();
    await pause(READINESS_CACHE_MS + 100);
    assert.deepEqual(await readyz(port), { status: 200, body: '{"status":"ready"}' });

    // The code ships a migration the database lacks (an older schema): not ready, naming the migrations.
    const [newest] = await sql`delete from drizzle.__drizzle_migrations
      where created_at = (select max(created_at) from drizzle.__drizzle_migrations) returning hash, created_at`;
    try {
      await pause(READINESS_CACHE_MS + 100);
      const behind = await readyz(port);
      assert.equal(behind.status, 503);
      assert.deepEqual(JSON.parse(behind.body), { status: "not ready", notReady: ["migrations"] });
    } finally {
      await sql`insert into drizzle.__drizzle_migrations (hash, created_at) values (${newest!.hash}, ${newest!.created_at})`;
    }
    await pause(READINESS_CACHE_MS + 100);
    assert.equal((await readyz(port)).status, 200);
  } finally {
    await sql.end({ timeout: 1 });
    await stopProcess(api);
  }
});

test("SIGTERM on an API: its watch ends Unavailable, a new request is refused, the call in flight completes, exit 0 within the grace", async () => {
  const graceSeconds = 20;
  const port = await freePort();
  const api = startProcess("api", { PORT: String(port), SHUTDOWN_GRACE_SECONDS: String(graceSeconds) });
  const worker = startProcess("worker", {});
  const owner = await harness.api.newOwner();
  const alice = harness.api.clients(owner.token);
  const host = fleet.hosts[0]!;
  let gate: Awaited<ReturnType<typeof holdCommand>> | undefined;
  try {
    const clusterId = (await alice.clusters.createCluster({ name: "drain" })).cluster!.id;
    const server = (
      await alice.servers.createServer({
        clusterId,
        name: "drain-1",
        host: host.ip,
        credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
      })
    ).server!;
    await api.line(/API listening/);
    const viaApi = ownerClients(port, owner.token);

    // The connection test (a unary call that waits for its workflow) is held on the host at `uname`.
    gate = await holdCommand(fleet, host, "uname", "/usr/bin/uname");
    const held = viaApi.servers.testServerConnection({ id: server.id });
    held.catch(() => {});
    await gate.reached;
    const running = (await alice.operations.listOperations({ serverId: server.id })).operations.find(
      (o) => o.status === OperationStatus.RUNNING,
    );
    assert.ok(running, "the connection test's operation runs");
    const watch = viaApi.operations.watchOperation({ id: running.id })[Symbol.asyncIterator]();
    assert.ok((await watch.next()).value?.operation, "the watch streams the operation");
    const watchEnd = (async () => {
      for (;;) if ((await watch.next()).done) return undefined;
    })().catch((error: unknown) => error);

    const signalled = Date.now();
    api.child.kill("SIGTERM");
    const ended = await watchEnd;
    assert.ok(ended instanceof ConnectError, `the watch ends with an error, not ${String(ended)}`);
    assert.equal(ended.code, Code.Unavailable, ended.message);
    assert.equal(ended.rawMessage, "server is restarting, retrying");

    // A new client (a new connection) after the drain began: refused, retryable.
    const late = await ownerClients(port, owner.token)
      .servers.getServer({ id: server.id })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    assert.ok(late instanceof ConnectError && late.code === Code.Unavailable, `a new call is refused as Unavailable: ${String(late)}`);

    await gate.release();
    const answer = await held;
    assert.equal(answer.outcome, ConnectionOutcome.OK, answer.message);
    assert.equal(await api.exited, 0, "exit 0");
    assert.ok(Date.now() - signalled < graceSeconds * 1000, "within the grace period");
  } finally {
    await gate?.release();
    await stopProcess(api);
    worker.child.kill("SIGTERM");
    await worker.exited;
  }
});

test("SIGTERM on a worker in the middle of an activity: it finishes the step, exits 0, the operation ends once, nothing runs twice", async () => {
  const alice = harness.api.clients((await harness.api.newOwner()).token);
  const clusterId = (await alice.clusters.createCluster({ name: "drain-worker" })).cluster!.id;
  const host = fleet.hosts[0]!;
  const server = (
    await alice.servers.createServer({
      clusterId,
      name: "drain-w1",
      host: host.ip,
      credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
    })
  ).server!;

  const metricsPort = await freePort();
  // dpkg is held on the host while it installs docker.io: the worker is told to stop in the middle of the step.
  const gate = await holdDpkgConfigure(fleet, host);
  const first = startProcess("worker", { SHUTDOWN_GRACE_SECONDS: "240", WORKER_METRICS_PORT: String(metricsPort) });
  let second: ServiceProcess | undefined;
  try {
    const started = await alice.servers.configureServer({ id: server.id });
    await gate.reached;
    assert.deepEqual(await readyz(metricsPort), { status: 200, body: '{"status":"ready"}' }, "a worker alone answers /readyz");
    first.child.kill("SIGTERM");
    await first.line(/"stopping"/);
    assert.deepEqual(JSON.parse((await readyz(metricsPort)).body).notReady, ["draining"], "not ready once draining");
    await gate.release();
    assert.equal(await first.exited, 0, "the worker exits 0 once its activity is done");

    second = startProcess("worker", {});
    const op = await watchUntilEnd(alice.operations, started.operation!.id);
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
    assert.equal(op.steps.filter((s) => s.name === "docker").length, 1, "the step is reported once");
    const history = await harness.client.workflow.getHandle(started.operation!.workflowId).fetchHistory();
    const retried = history.events?.filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1) ?? [];
    assert.equal(retried.length, 0, "no activity was retried: the stopping worker finished its own");
  } finally {
    await gate.release();
    await stopProcess(first);
    if (second) {
      second.child.kill("SIGTERM");
      await second.exited;
    }
  }
  // On the host: docker.io installed by one apt run, the rest of the bootstrap once.
  assert.equal(hostExec(host.name, "grep -c '^Commandline:.*docker.io' /var/log/apt/history.log").trim(), "1");
  assert.equal(hostExec(host.name, "grep -c '^axion:' /etc/passwd").trim(), "1");
  assert.match(hostExec(host.name, "systemctl is-active docker"), /active/);
});

test("`axion ops watch` across an API restart: a note on stderr, the watch goes on where it was, no error", async () => {
  const port = await freePort();
  const first = startProcess("api", { PORT: String(port), SHUTDOWN_GRACE_SECONDS: "10" });
  const worker = startProcess("worker", {});
  let second: ServiceProcess | undefined;
  const owner = await harness.api.newOwner();
  const alice = harness.api.clients(owner.token);
  const host = fleet.hosts[0]!;
  const gate = await holdCommand(fleet, host, "uname", "/usr/bin/uname");
  try {
    const clusterId = (await alice.clusters.createCluster({ name: "drain-cli" })).cluster!.id;
    const server = (
      await alice.servers.createServer({
        clusterId,
        name: "drain-cli-1",
        host: host.ip,
        credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
      })
    ).server!;
    await first.line(/API listening/);
    const held = alice.servers.testServerConnection({ id: server.id });
    held.catch(() => {});
    await gate.reached;
    const running = (await alice.operations.listOperations({ serverId: server.id })).operations.find(
      (o) => o.status === OperationStatus.RUNNING,
    );
    assert.ok(running);

    const cli = spawn(process.execPath, [join(process.cwd(), "cli", "bin", "axion.mjs"), "ops", "watch", running.id], {
      cwd: tmpdir(),
      env: { ...process.env, AXION_API: `http://127.0.0.1:${port}`, AXION_TOKEN: owner.token, NO_COLOR: "1", XDG_CONFIG_HOME: tmpdir() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const watching = new Promise<void>((resolve) =>
      cli.stdout.on("data", (d) => {
        stdout += d;
        resolve();
      }),
    );
    cli.stderr.on("data", (d) => {
      stderr += d;
    });
    const cliExit = new Promise<number | null>((resolve) => cli.once("exit", resolve));
    await watching;

    first.child.kill("SIGTERM");
    assert.equal(await first.exited, 0);
    second = startProcess("api", { PORT: String(port) });
    await second.line(/API listening/);
    await gate.release();
    await held;

    assert.equal(await cliExit, 0, `the watch ends as the operation does: ${stderr}`);
    assert.match(stderr, /server is restarting, retrying/);
    assert.doesNotMatch(stderr, /error/i);
    assert.match(stdout, /^test_connection on drain-cli-1/m);
    assert.equal(stdout.match(/^test_connection on/gm)?.length, 1, "the header once: the watch went on where it was");
    assert.match(stdout, /SUCCEEDED/);
  } finally {
    await gate.release();
    await stopProcess(first);
    await stopProcess(second);
    worker.child.kill("SIGTERM");
    await worker.exited;
  }
});
