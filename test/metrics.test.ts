import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import { issueAgentToken } from "../core/agents/agent-tokens.js";
import { enqueueServerEvent } from "../core/kernel/outbox.js";
import { type DatabaseHandle, openDatabase } from "../db/client.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { RolloutService, RolloutStatus } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { type RunningDevServer, startDevServer } from "../temporal/dev-server.js";
import { ed25519KeyPair } from "./support/keys.js";
import { freePort } from "./support/ports.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";
import { promtoolCheckMetrics } from "./support/promtool.js";
import { startTestSshServer, type TestSshServer } from "./support/ssh-server.js";

/**
 * `main.ts all` (API and worker in one process, one registry) against real
 * PostgreSQL, a real Temporal dev server and a real SSH server on loopback;
 * every value is read from scrapes of its /metrics.
 */
const adminToken = "metrics-test-admin-token-0001";
const metricsToken = "metrics-test-scrape-token-0001";

let pg: TestPostgres;
let dev: RunningDevServer;
let sshd: TestSshServer;
/** A second SSH server: (host, port) is unique per owner, and the password login needs its own. */
let sshd2: TestSshServer;
let database: DatabaseHandle;
let service: ChildProcess;
let dataDir: string;
let api: string;
let workerMetrics: string;
let temporalMetrics: string;
let output = "";
const keys = ed25519KeyPair();

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "axion-metrics-"));
  pg = await startPostgres();
  dev = await startDevServer(join(dataDir, "dev"), { port: await freePort(), uiPort: await freePort(), headless: true });
  sshd = await startTestSshServer(keys.publicKey);
  sshd2 = await startTestSshServer(keys.publicKey);
  const [port, workerPort, temporalPort] = [await freePort(), await freePort(), await freePort()];
  api = `http://127.0.0.1:${port}`;
  workerMetrics = `http://127.0.0.1:${workerPort}/metrics`;
  temporalMetrics = `http://127.0.0.1:${temporalPort}/metrics`;
  service = spawn(process.execPath, ["--import", "tsx", "app/main.ts", "all"], {
    env: {
      ...process.env,
      AXION_DATA_DIR: dataDir,
      DATABASE_URL: pg.url,
      TEMPORAL_ADDRESS: dev.address,
      TEMPORAL_NAMESPACE: dev.spec.namespace,
      TEMPORAL_TASK_QUEUE: `metrics-test-${randomBytes(4).toString("hex")}`,
      KAFKA_BROKERS: "",
      REDIS_URL: "",
      PORT: String(port),
      AXION_ADMIN_TOKEN: adminToken,
      CREDENTIALS_KEY: randomBytes(32).toString("base64"),
      SERVER_ADDRESS_ALLOW: "127.0.0.1/32",
      LIVENESS_SWEEP_INTERVAL: "1",
      METRICS_TOKEN: metricsToken,
      WORKER_METRICS_PORT: String(workerPort),
      TEMPORAL_METRICS_ADDRESS: `127.0.0.1:${temporalPort}`,
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
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
    if (ok && output.includes("worker polling")) break;
    if (Date.now() > deadline) throw new Error(`service did not become healthy: ${output}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  database = await openDatabase({ databaseUrl: pg.url, dataDir: "memory://" });
});

after(async () => {
  if (service?.pid && service.exitCode === null) {
    const exited = new Promise((r) => service.once("exit", r));
    process.kill(-service.pid, "SIGTERM");
    await exited;
  }
  await database?.close();
  await sshd?.close();
  await sshd2?.close();
  await dev?.stop();
  await pg?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function clients(token?: string) {
  const auth: Interceptor = (next) => (req) => {
    if (token) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl: api, httpVersion: "1.1", interceptors: [auth] });
  return {
    clusters: createClient(ClusterService, transport),
    servers: createClient(ServerService, transport),
    rollouts: createClient(RolloutService, transport),
  };
}

type Samples = { name: string; labels: Record<string, string>; value: number }[];

async function scrape(url = `${api}/metrics`): Promise<Samples> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${metricsToken}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parse(await res.text());
}

function parse(text: string): Samples {
  const samples: Samples = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k as string] = v as string;
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of the series with exactly these labels (0 when absent: a counter never incremented). */
function value(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels);
  const found = samples.find(
    (s) => s.name === name && Object.keys(s.labels).length === wanted.length && wanted.every(([k, v]) => s.labels[k] === v),
  );
  return found?.value ?? 0;
}

async function eventually(check: (samples: Samples) => boolean, what: string, withinMs = 20_000): Promise<Samples> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const samples = await scrape();
    if (check(samples)) return samples;
    if (Date.now() > deadline) throw new Error(`not seen within ${withinMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const servers: Record<string, string> = {};
let clusterId = "";

async function createServer(name: string, sshPort: number, credential: "key" | "password"): Promise<string> {
  const { server } = await clients(adminToken).servers.createServer({
    clusterId,
    name,
    host: "127.0.0.1",
    sshPort,
    sshUser: "root",
    credential: {
      method: credential === "key" ? { case: "privateKey", value: { key: keys.privateKey } } : { case: "password", value: "not-the-key" },
    },
  });
  servers[name] = server?.id as string;
  return server?.id as string;
}

test("/metrics answers only with the bearer token when METRICS_TOKEN is set, on the API port and the worker's own", async () => {
  for (const url of [`${api}/metrics`, workerMetrics]) {
    assert.equal((await fetch(url)).status, 401, url);
    assert.equal((await fetch(url, { headers: { authorization: `Bearer ${metricsToken}x` } })).status, 401, url);
    assert.equal((await fetch(url, { headers: { authorization: "Bearer short" } })).status, 401, url);
    const samples = await scrape(url);
    assert.ok(value(samples, "process_cpu_user_seconds_total") > 0, "default process metrics");
  }
});

test("servers by status count the inventory", async () => {
  const { cluster } = await clients(adminToken).clusters.createCluster({ name: "metrics" });
  clusterId = cluster?.id as string;
  await createServer("good", sshd.port, "key");
  await createServer("closed-port", await freePort(), "key");
  await createServer("wrong-login", sshd2.port, "password");
  const samples = await scrape();
  assert.equal(value(samples, "axion_servers", { status: "PENDING" }), 3);
  assert.equal(value(samples, "axion_servers", { status: "ONLINE" }), 0, "every status is present, zero included");
  assert.ok(samples.some((s) => s.name === "axion_servers" && s.labels.status === "ONLINE"));
});

test("connection tests count as operations started and finished by kind and outcome, with durations and SSH failures by class", async () => {
  const before = await scrape();
  const answers: Record<string, string> = {};
  for (const name of ["good", "closed-port", "wrong-login"]) {
    const res = await clients(adminToken).servers.testServerConnection({ id: servers[name] as string });
    answers[name] = `${res.outcome}:${res.operation?.status}`;
  }
  const after = await eventually(
    (s) => value(s, "axion_operations_finished_total", { kind: "test_connection", outcome: "succeeded" }) >= 3,
    "three finished connection tests",
  );
  const delta = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
  assert.equal(delta("axion_operations_started_total", { kind: "test_connection", started_by: "owner" }), 3, JSON.stringify(answers));
  assert.equal(delta("axion_operations_finished_total", { kind: "test_connection", outcome: "succeeded" }), 3, JSON.stringify(answers));
  assert.equal(delta("axion_operation_duration_seconds_count", { kind: "test_connection", outcome: "succeeded" }), 3);
  assert.ok(delta("axion_operation_duration_seconds_sum", { kind: "test_connection", outcome: "succeeded" }) > 0);
  assert.equal(delta("axion_ssh_failures_total", { class: "SshUnreachable" }), 1, JSON.stringify(answers));
  assert.equal(delta("axion_ssh_failures_total", { class: "SshAuthFailed" }), 1, JSON.stringify(answers));
  // The closed port leaves its server UNREACHABLE (a failed login does not), which the gauge shows.
  assert.equal(value(after, "axion_servers", { status: "UNREACHABLE" }), 1, JSON.stringify(answers));
  assert.equal(value(after, "axion_servers", { status: "PENDING" }), 2);
});

test("heartbeats count accepted and refused by reason, and an agent heard from again moves its server ONLINE", async () => {
  const serverId = servers["closed-port"] as string;
  const token = await issueAgentToken(database.db, serverId);
  const before = await scrape();
  const post = (authorization: string, body: unknown) =>
    fetch(`${api}/axion.infrastructure.v1.AgentService/Heartbeat`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization },
      body: JSON.stringify(body),
    });
  assert.equal((await post(`Bearer ${token}`, { serverId, metrics: { cpuPercent: 12 } })).status, 200);
  assert.equal((await post("Bearer axa_wrong", { serverId, metrics: { cpuPercent: 12 } })).status, 401);
  assert.equal((await post(`Bearer ${token}`, { serverId, metrics: { cpuPercent: 500 } })).status, 400);
  const after = await eventually((s) => value(s, "axion_liveness_transitions_total", { to: "ONLINE" }) >= 1, "the server going ONLINE");
  const delta = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
  assert.equal(delta("axion_heartbeats_accepted_total", { source: "api" }), 1);
  assert.equal(delta("axion_heartbeats_refused_total", { source: "api", reason: "unauthenticated" }), 1);
  assert.equal(delta("axion_heartbeats_refused_total", { source: "api", reason: "invalid_argument" }), 1);
  assert.equal(delta("axion_heartbeat_ingest_batch_heartbeats_count"), 1);
  assert.equal(delta("axion_heartbeat_ingest_batch_heartbeats_sum"), 1);
  assert.equal(delta("axion_api_requests_total", { method: "AgentService/Heartbeat", code: "ok" }), 1);
  assert.equal(delta("axion_api_requests_total", { method: "AgentService/Heartbeat", code: "unauthenticated" }), 1);
  assert.equal(value(after, "axion_liveness_transitions_total", { to: "ONLINE" }), 1);
  assert.equal(value(after, "axion_servers", { status: "ONLINE" }), 1);
  assert.ok(value(after, "axion_liveness_sweep_duration_seconds_count") > 0);
  assert.ok(value(after, "axion_heartbeat_ingestion_behind_seconds") < 30, "ingestion reports progress");
});

test("API requests count by method and code, refusals before routing included, with latency histograms", async () => {
  const before = await scrape();
  await clients(adminToken).clusters.listClusters({});
  await assert.rejects(clients().clusters.listClusters({}), (e) => ConnectError.from(e).code === Code.Unauthenticated);
  await assert.rejects(
    clients(adminToken).servers.getServer({ id: "not-an-id" }),
    (e) => ConnectError.from(e).code === Code.InvalidArgument,
  );
  const after = await scrape();
  const delta = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
  assert.equal(delta("axion_api_requests_total", { method: "ClusterService/ListClusters", code: "ok" }), 1);
  assert.equal(delta("axion_api_requests_total", { method: "ClusterService/ListClusters", code: "unauthenticated" }), 1);
  assert.equal(delta("axion_api_requests_total", { method: "ServerService/GetServer", code: "invalid_argument" }), 1);
  assert.equal(delta("axion_api_request_duration_seconds_count", { method: "ClusterService/ListClusters", code: "ok" }), 1);
  const unknown = await fetch(`${api}/axion.infrastructure.v1.ClusterService/${"x".repeat(40)}`, { method: "POST" });
  assert.equal(unknown.status, 401);
  assert.ok(!(await scrape()).some((s) => s.labels.method?.includes("xxxx")), "request paths never become label values");
});

test("the outbox backlog and the relay's lag are read from the database (no Kafka here: nothing is published)", async () => {
  await scrape();
  // A new event between two scrapes: the second shows it (each gauge reads at its own scrape, not the previous one's).
  await database.db.transaction((tx) =>
    enqueueServerEvent(tx, servers.good as string, "server.status_changed", { serverId: servers.good }),
  );
  const [row] = (await database.db.execute(sql`select count(*)::int as n from outbox_events where published_at is null`)) as unknown as {
    n: number;
  }[];
  const samples = await scrape();
  assert.ok((row?.n ?? 0) > 0);
  assert.equal(value(samples, "axion_outbox_backlog_events"), row?.n);
  assert.ok(value(samples, "axion_outbox_oldest_unpublished_age_seconds") > 0);
});

test("the Temporal SDK's own metrics are served in the Prometheus format", async () => {
  const text = await (await fetch(temporalMetrics)).text();
  const names = new Set(parse(text).map((s) => s.name));
  assert.ok(
    [...names].some((n) => n.startsWith("temporal_")),
    text.slice(0, 500),
  );
  assert.ok(
    [...names].some((n) => /^temporal_(workflow|activity)_/.test(n)),
    "workflow and activity series from the connection tests",
  );
});

test("rollouts count by status, and their children as operations started by a rollout", async () => {
  const before = await scrape();
  const { rollout } = await clients(adminToken).rollouts.startRollout({ kind: RolloutKind.TEST_CONNECTION, target: { clusterId } });
  let status = rollout?.status;
  for await (const update of clients(adminToken).rollouts.watchRollout({ id: rollout?.id as string })) status = update.rollout?.status;
  const ended = RolloutStatus[status ?? 0] as string;
  assert.ok(["SUCCEEDED", "FAILED"].includes(ended), ended);
  const after = await scrape();
  const delta = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
  assert.equal(delta("axion_rollouts", { status: ended }), 1);
  assert.ok(delta("axion_operations_started_total", { kind: "test_connection", started_by: "rollout" }) >= 1);
});

test("every scrape passes promtool check metrics: the API's, the worker's own listener's and the Temporal SDK's", async () => {
  // Last in the file: every series the tests above made (operations, SSH failures, rollouts) is in the scrape.
  for (const url of [`${api}/metrics`, workerMetrics, temporalMetrics]) {
    const res = await fetch(url, { headers: { authorization: `Bearer ${metricsToken}` } });
    assert.equal(res.status, 200, url);
    assert.deepEqual(await promtoolCheckMetrics(await res.text()), { code: 0, output: "" }, url);
  }
});
