import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Client, Connection } from "@temporalio/client";
import postgres from "postgres";
import { AgentService } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { RolloutService, RolloutStatus } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ServerService, ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { type RunningDevServer, startDevServer } from "../temporal/dev-server.js";
import { testCredentialsKey } from "./support/api.js";
import { holdDpkgConfigure } from "./support/host-gate.js";
import { ed25519KeyPair } from "./support/keys.js";
import { freePort } from "./support/ports.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";
import { type ServiceProcess, startServiceProcess, waitForHealthy, waitForPolling } from "./support/service-process.js";
import { startTcpBalancer, type TcpBalancer } from "./support/tcp-balancer.js";
import { startTemporalCluster, type TemporalCluster } from "./support/temporal-cluster.js";
import { buildImage, downHosts, type Fleet, hostExec, upHosts } from "./support/testhosts.js";

/**
 * Scale-out as operators run it: two API processes and two worker processes (`main.ts api|worker`, each its
 * own OS process group) on one PostgreSQL and one Temporal server, bootstrapping real hosts.
 * The Temporal server is a real one (go.temporal.io/server on the same PostgreSQL, SQL visibility:
 * scripts/temporal-cluster/up.sh), as in production; AXION_SCALE_OUT_TEMPORAL=dev runs the same
 * tests on the Temporal CLI's dev server instead.
 */
const onRealServer = (process.env.AXION_SCALE_OUT_TEMPORAL ?? "cluster") !== "dev";
const prefix = "pscale";
const HOSTS = 3;
/** Above the agent's 15 s request timeout: an agent whose connection hangs on a stalled API reconnects in time. */
const TIMEOUT_S = 25;
const adminToken = "scale-out-test-admin-token-0001";
const orchestratorKey = ed25519KeyPair().publicKey.trim();
const processes: ServiceProcess[] = [];
let logDir: string;
let devDir: string;
let pg: TestPostgres;
let dev: RunningDevServer | undefined;
let cluster: TemporalCluster | undefined;
let temporalAddress: string;
let namespace: string;
let temporal: Client;
let temporalConnection: Connection;
let fleet: Fleet;
let balancer: TcpBalancer;
const apiPorts: number[] = [];
let workers: ServiceProcess[] = [];
let apis: ServiceProcess[] = [];
const servers: { id: string; host: string; operationWorkflowId?: string }[] = [];

const baseUrl = (i: number) => `http://127.0.0.1:${apiPorts[i]}`;
function clients(i: number, token = adminToken) {
  const transport = createConnectTransport({
    baseUrl: baseUrl(i),
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
    agents: createClient(AgentService, transport),
    rollouts: createClient(RolloutService, transport),
  };
}
type Api = ReturnType<typeof clients>;

function commonEnv(): Record<string, string> {
  return {
    DATABASE_URL: pg.url,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: namespace,
    TEMPORAL_TASK_QUEUE: "axion-scale-out-test",
    CREDENTIALS_KEY: testCredentialsKey,
    AXION_ADMIN_TOKEN: adminToken,
    ORCHESTRATOR_SSH_PUBLIC_KEY: orchestratorKey,
    SSH_CONNECT_TIMEOUT_MS: "4000",
    AGENT_BINARY_DIR: join(process.cwd(), "agent", "dist"),
    AGENT_HEARTBEAT_INTERVAL: "1",
    AGENT_HEARTBEAT_TIMEOUT: String(TIMEOUT_S),
    LIVENESS_SWEEP_INTERVAL: "1",
    RECONCILE_INTERVAL_SECONDS: "5",
    LOG_LEVEL: "info",
  };
}

function startApi(i: number): ServiceProcess {
  const p = startServiceProcess("api", { ...commonEnv(), PORT: String(apiPorts[i]) }, logDir, `api${i + 1}-${Date.now()}`);
  processes.push(p);
  return p;
}

/** Agents reach the APIs through the load balancer, so their heartbeats go through both. */
function startWorker(name: string): ServiceProcess {
  const p = startServiceProcess(
    "worker",
    { ...commonEnv(), PORT: "0", AGENT_API_URL: `http://${fleet.gateway}:${balancer.port}` },
    logDir,
    `${name}-${Date.now()}`,
  );
  processes.push(p);
  return p;
}

/** The pid of the worker running the workflow's current activity (from its `pid@host` identity). */
async function workerRunningActivity(workflowId: string): Promise<string> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const pending = (await temporal.workflow.getHandle(workflowId).describe()).raw.pendingActivities ?? [];
    const identity = pending.find((a) => a.lastWorkerIdentity)?.lastWorkerIdentity;
    if (identity) return identity.split("@")[0]!;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`no activity of ${workflowId} started`);
}

async function statusOf(api: Api, id: string): Promise<ServerStatus> {
  return (await api.servers.getServer({ id })).server!.status;
}

before(async () => {
  execFileSync("bash", ["scripts/build-agent.sh"], { stdio: ["ignore", "ignore", "inherit"], timeout: 10 * 60_000 });
  buildImage();
  downHosts(prefix);
  fleet = upHosts(prefix, HOSTS, "fresh");
  logDir = mkdtempSync(join(tmpdir(), "axion-scale-out-logs-"));
  devDir = mkdtempSync(join(tmpdir(), "axion-scale-out-temporal-"));
  pg = await startPostgres();
  if (onRealServer) {
    cluster = startTemporalCluster(pg.url);
    console.error(`real Temporal server up in ${cluster.startMs} ms (schema, start, namespace)`);
    ({ address: temporalAddress, namespace } = cluster);
  } else {
    dev = await startDevServer(devDir, { port: await freePort(), uiPort: await freePort(), headless: true });
    ({ address: temporalAddress, namespace } = { address: dev.address, namespace: dev.spec.namespace });
  }
  temporalConnection = await Connection.connect({ address: temporalAddress });
  temporal = new Client({ connection: temporalConnection, namespace });
  apiPorts.push(await freePort(), await freePort());
  balancer = await startTcpBalancer(apiPorts);
  // Started together: migrations and the admin token are taken by whoever comes first.
  apis = [startApi(0), startApi(1)];
  workers = [startWorker("worker1"), startWorker("worker2")];
  await Promise.all([...apis.map((a, i) => waitForHealthy(baseUrl(i), a)), ...workers.map((w) => waitForPolling(w))]);
});

after(async () => {
  for (const p of processes) await p.kill();
  await balancer?.close();
  await temporalConnection?.close();
  await dev?.stop();
  await cluster?.stop();
  await pg?.stop();
  downHosts(prefix);
  if (devDir) rmSync(devDir, { recursive: true, force: true });
  if (logDir) console.error(`scale-out process logs: ${logDir}`);
});

test("bootstraps through two APIs spread over two workers; kill -9 of one worker and one API mid-run: every operation ends once, no effect doubled", async () => {
  const [one, two] = [clients(0), clients(1)];
  const clusterId = (await one.clusters.createCluster({ name: "scale" })).cluster!.id;
  for (const [i, host] of fleet.hosts.entries()) {
    const via = i % 2 === 0 ? one : two;
    const server = (
      await via.servers.createServer({
        clusterId,
        name: host.name,
        host: host.ip,
        credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
      })
    ).server!;
    servers.push({ id: server.id, host: host.name });
  }
  // Held on the host while dpkg installs docker.io, so the kill surely comes in the middle of the step.
  const gate = await holdDpkgConfigure(fleet, fleet.hosts[0]!, 300_000);
  for (const [i, s] of servers.entries()) {
    const via = i % 2 === 0 ? one : two;
    s.operationWorkflowId = (await via.servers.configureServer({ id: s.id })).operation!.workflowId;
  }

  // Mid-run: once a bootstrap is in its Docker step, worker #1 and API #1 die without a word.
  await gate.reached;
  const busyWorkerPid = await workerRunningActivity(servers[0]!.operationWorkflowId!);
  const victim = workers.findIndex((w) => w.child.pid === Number(busyWorkerPid));
  assert.ok(victim >= 0, `the Docker step runs on one of our workers (${busyWorkerPid})`);
  const killedWorkerPid = workers[victim]!.child.pid!;
  const survivor = workers[1 - victim]!;
  await Promise.all([workers[victim]!.kill(), apis[0]!.kill()]);
  await gate.release();
  apis[0] = startApi(0); // an API restarted on its address, as a supervisor would
  await waitForHealthy(baseUrl(0), apis[0]);

  const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
  try {
    const deadline = Date.now() + 15 * 60_000;
    for (;;) {
      const running = await sql`select count(*)::int as n from operations where status = 'RUNNING' and kind <> 'test_connection'`;
      if (running[0]!.n === 0) break;
      if (Date.now() > deadline) assert.fail("operations still RUNNING after 15 minutes");
      await new Promise((r) => setTimeout(r, 2000));
    }
    const rows = await sql`select server_id, kind, status, error from operations where kind <> 'test_connection' order by started_at`;
    for (const s of servers) {
      const mine = rows.filter((r) => r.server_id === s.id);
      assert.equal(mine.length, 1, `one operation for ${s.host}: ${JSON.stringify(mine)}`);
      assert.equal(mine[0]!.status, "SUCCEEDED", `${s.host}: ${mine[0]!.error}`);
    }
  } finally {
    await sql.end();
  }

  // Activities ran on both workers (Temporal's record of who started each attempt).
  const identities = new Set<string>();
  for (const s of servers) {
    const history = await temporal.workflow.getHandle(s.operationWorkflowId!).fetchHistory();
    for (const e of history.events ?? []) {
      const identity = e.activityTaskStartedEventAttributes?.identity;
      if (identity) identities.add(identity.split("@")[0]!);
    }
  }
  assert.ok(identities.has(String(killedWorkerPid)), `the killed worker ran activities (${[...identities]})`);
  assert.ok(identities.has(String(survivor.child.pid)), `the surviving worker ran activities (${[...identities]})`);

  const cut = await temporal.workflow.getHandle(servers[0]!.operationWorkflowId!).fetchHistory();
  const retried = cut.events?.some((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
  assert.ok(retried, "the Docker step cut by the kill was retried on the other worker");

  for (const s of servers) {
    assert.equal(hostExec(s.host, "grep -c '^axion:' /etc/passwd").trim(), "1", `${s.host}: one admin user`);
    assert.equal(hostExec(s.host, "cat /etc/sudoers.d/90-axion-axion | wc -l").trim(), "1", `${s.host}: one sudoers line`);
    assert.equal(
      hostExec(s.host, `grep -cxF '${orchestratorKey}' /home/axion/.ssh/authorized_keys`).trim(),
      "1",
      `${s.host}: the deploy key once`,
    );
    assert.equal(hostExec(s.host, "nft list tables | grep -c axion_filter").trim(), "1", `${s.host}: the firewall table once`);
    assert.match(hostExec(s.host, "systemctl is-active docker axion-agent"), /^active\nactive/, `${s.host}: docker and the agent run`);
    assert.equal(hostExec(s.host, "systemctl list-units --all --no-legend 'axion-agent*' | wc -l").trim(), "1", "one agent unit");
  }
  for (const s of servers) assert.equal(await statusOf(two, s.id), ServerStatus.ONLINE, `${s.host} is ONLINE`);
});

test("agents' heartbeats are taken by both APIs; one API stalled (SIGSTOP) past the heartbeat timeout makes no server OFFLINE", async () => {
  assert.equal(servers.length, HOSTS, "the bootstraps ran");
  const [one, two] = [clients(0), clients(1)];
  // The agents' connections went through the balancer to both APIs, and each agent's own token works at either.
  assert.ok(
    balancer.connections.every((n) => n > 0),
    `agent connections per API: ${balancer.connections}`,
  );
  for (const s of servers) {
    const token = JSON.parse(hostExec(s.host, "cat /etc/axion-agent/config.json")).token as string;
    for (const i of [0, 1]) {
      await clients(i, token).agents.heartbeat({ serverId: s.id, sampleTime: timestampFromDate(new Date()), metrics: { cpuPercent: 1 } });
    }
  }

  apis[0]!.signal("SIGSTOP");
  try {
    const until = Date.now() + (TIMEOUT_S * 2 + 5) * 1000;
    while (Date.now() < until) {
      for (const s of servers)
        assert.equal(await statusOf(two, s.id), ServerStatus.ONLINE, `${s.host} stays ONLINE while API #1 is stalled`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    // Past two timeouts the stalled API no longer holds liveness back: the agents are heard through API #2.
    for (const s of servers) {
      const heard = (await two.agents.getAgentStatus({ id: s.id })).lastHeartbeatTime;
      assert.ok(heard && Date.now() - timestampDate(heard).getTime() < TIMEOUT_S * 1000, `${s.host} is heard while API #1 is stalled`);
    }
  } finally {
    apis[0]!.signal("SIGCONT");
  }
  // Thawed, API #1 answers again and nothing went OFFLINE meanwhile or since.
  await waitForHealthy(baseUrl(0), apis[0]!, 30_000);
  await new Promise((r) => setTimeout(r, 10_000));
  for (const s of servers) assert.equal(await statusOf(one, s.id), ServerStatus.ONLINE, `${s.host} is ONLINE after the stall`);
});

/** Workflows a visibility query finds: the Web UI's and `temporal workflow list --query`'s view. */
async function visibleWorkflows(query: string, expected: number): Promise<string[]> {
  // Visibility records are written by the server's own queue after the fact, and only ever added:
  // once `expected` of them are there, they stay.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ids: string[] = [];
    for await (const w of temporal.workflow.list({ query })) ids.push(w.workflowId);
    if (ids.length >= expected || Date.now() > deadline) return ids.sort();
    await new Promise((r) => setTimeout(r, 500));
  }
}

test("a rollout runs through the same Temporal server, and visibility queries on our search attributes find every workflow", async () => {
  assert.equal(servers.length, HOSTS, "the bootstraps ran");
  const one = clients(0);
  const { rollout } = await one.rollouts.startRollout({
    kind: RolloutKind.TEST_CONNECTION,
    target: { serverIds: servers.map((s) => s.id) },
    strategy: { canarySize: 0, batchSize: { value: { case: "percent", value: 100 } } },
  });
  let last = rollout;
  for await (const update of one.rollouts.watchRollout({ id: rollout!.id })) last = update.rollout;
  assert.equal(last?.status, RolloutStatus.SUCCEEDED, `rollout ${RolloutStatus[last?.status ?? 0]}: ${last?.reason}`);
  assert.equal(last?.counts?.succeeded, HOSTS);

  const bootstraps = servers.map((s) => s.operationWorkflowId!).sort();
  assert.deepEqual(await visibleWorkflows(`AxionWorkflowRole = "operation" AND AxionOperation = "bootstrap"`, HOSTS), bootstraps);
  const first = servers[0]!;
  assert.deepEqual(await visibleWorkflows(`AxionServerId = "${first.id}" AND AxionOperation = "bootstrap"`, 1), [
    first.operationWorkflowId,
  ]);
  assert.deepEqual(await visibleWorkflows(`AxionWorkflowRole = "rollout" AND AxionRolloutId = "${rollout!.id}"`, 1), [rollout!.workflowId]);
  const probes = await visibleWorkflows(`AxionWorkflowRole = "operation" AND AxionRolloutId = "${rollout!.id}"`, HOSTS);
  assert.equal(probes.length, HOSTS, `one connection test per server: ${probes}`);
  // The Web UI's default list (docs/provisioning.md): everything but the once-a-minute housekeeping.
  const listed = await visibleWorkflows(`AxionWorkflowRole != "housekeeping"`, 2 * HOSTS + 1);
  for (const id of [...bootstraps, rollout!.workflowId, ...probes]) assert.ok(listed.includes(id), `${id} in the Web UI's list`);
});
