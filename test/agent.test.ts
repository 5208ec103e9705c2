import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { ensureHeartbeatMonitor } from "../temporal/heartbeat-monitor.js";
import { expectCode } from "./support/assertions.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, DOCKER_PREINSTALLED, downHosts, type Fleet, hostExec, upHosts } from "./support/testhosts.js";

/** The real axion-agent, installed by the bootstrap on real hosts, heartbeating to the real API. */
const prefix = "pagent";
const TIMEOUT_S = 6;
const SWEEP_S = 1;
let harness: ProvisioningHarness;
let fleet: Fleet;
let alice: ReturnType<ProvisioningHarness["api"]["clients"]>;
let ownerToken: string;
const servers: { id: string; host: string }[] = [];

const agentApi = (token: string) => harness.api.clients(token).agents;
const statusOf = async (id: string) => (await alice.servers.getServer({ id })).server!;
async function waitForStatus(id: string, status: ServerStatus, withinMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < withinMs) {
    if ((await statusOf(id)).status === status) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`server ${id} not ${ServerStatus[status]} within ${withinMs} ms (is ${ServerStatus[(await statusOf(id)).status]})`);
}

before(async () => {
  execFileSync("bash", ["scripts/build-agent.sh"], { stdio: ["ignore", "ignore", "inherit"], timeout: 10 * 60_000 });
  buildImage();
  downHosts(prefix);
  fleet = upHosts(prefix, 2, "fresh", DOCKER_PREINSTALLED);
  harness = await startProvisioningHarness({
    sshConnectTimeoutMs: 4000,
    agent: { binaryDir: join(process.cwd(), "agent", "dist"), gateway: fleet.gateway, heartbeatIntervalSeconds: 1 },
  });
  await ensureHeartbeatMonitor(harness.client, harness.taskQueue, {
    timeoutSeconds: TIMEOUT_S,
    intervalSeconds: SWEEP_S,
    recoverOffline: false,
    maxOfflineRecoveries: 5,
    metricsRetentionHours: 1,
    outboxRetentionHours: 24,
    ingestionProgressRetentionHours: 24,
  });
  ownerToken = (await harness.api.newOwner()).token;
  alice = harness.api.clients(ownerToken);
  const clusterId = (await alice.clusters.createCluster({ name: "agents" })).cluster!.id;
  for (const host of fleet.hosts) {
    const server = (
      await alice.servers.createServer({
        clusterId,
        name: host.name,
        host: host.ip,
        credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
      })
    ).server!;
    servers.push({ id: server.id, host: host.name });
  }
});

after(async () => {
  await harness?.close();
  downHosts(prefix);
});

test("the bootstrap installs the agent under systemd; it registers and the server turns ONLINE with metrics", async () => {
  const ops = await Promise.all(servers.map(async (s) => (await alice.servers.configureServer({ id: s.id })).operation!.id));
  for (const [i, id] of ops.entries()) {
    const op = await watchUntilEnd(alice.operations, id);
    const journal = () =>
      hostExec(servers[i]!.host, "journalctl -u axion-agent --no-pager -n 30; systemctl status axion-agent --no-pager | head -5");
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.status === OperationStatus.SUCCEEDED ? "" : `${op.error}\n${journal()}`);
    assert.deepEqual(
      op.steps.slice(-2).map((s) => [s.name, s.status]),
      [
        ["agent", "done"],
        ["agent_registered", "done"],
      ],
    );
  }
  for (const s of servers) {
    await waitForStatus(s.id, ServerStatus.ONLINE, 15_000);
    assert.match(hostExec(s.host, "systemctl is-active axion-agent"), /active/);
    assert.match(hostExec(s.host, "ps -o user= -C axion-agent"), /axion-agent/, "runs unprivileged");
    assert.equal(hostExec(s.host, "stat -c '%a %U:%G' /etc/axion-agent/config.json").trim(), "640 root:axion-agent");
  }
  await new Promise((r) => setTimeout(r, 2500));
  const status = await agentApi(ownerToken).getAgentStatus({ id: servers[0]!.id });
  assert.equal(status.info?.hostname, servers[0]!.host);
  assert.match(status.info?.os ?? "", /Debian/);
  assert.ok((status.latestMetrics?.memoryTotalBytes ?? 0n) > 0n);
  assert.ok((status.latestMetrics?.disks.length ?? 0) > 0);
  const history = await agentApi(ownerToken).listMetrics({ id: servers[0]!.id });
  assert.ok(history.samples.length >= 2, "heartbeats every second are kept as samples");

  // Re-running the bootstrap leaves a running, registered agent alone.
  const rerun = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: servers[0]!.id })).operation!.id);
  assert.equal(rerun.steps.find((s) => s.name === "agent")?.status, "unchanged");
});

test("an agent killed goes OFFLINE within timeout + one sweep; restarted, it is ONLINE again", async () => {
  const s = servers[0]!;
  hostExec(s.host, "systemctl stop axion-agent");
  const tookMs = await waitForStatus(s.id, ServerStatus.OFFLINE, (TIMEOUT_S + SWEEP_S + 5) * 1000);
  assert.ok(tookMs <= (TIMEOUT_S + SWEEP_S + 2) * 1000, `OFFLINE after ${tookMs} ms`);
  assert.match((await statusOf(s.id)).statusReason, /no heartbeat/);
  assert.equal((await statusOf(servers[1]!.id)).status, ServerStatus.ONLINE, "the other server is untouched");
  hostExec(s.host, "systemctl start axion-agent");
  await waitForStatus(s.id, ServerStatus.ONLINE, 10_000);
});

test("a token stolen from one server cannot speak for another; InstallAgent rotates the token", async () => {
  const [a, b] = servers as [{ id: string; host: string }, { id: string; host: string }];
  const stolen = JSON.parse(hostExec(a.host, "cat /etc/axion-agent/config.json")).token as string;
  const heartbeatFor = (token: string, serverId: string) =>
    agentApi(token).heartbeat({ serverId, sampleTime: timestampFromDate(new Date()), metrics: { cpuPercent: 1 } });
  await expectCode(heartbeatFor(stolen, b.id), Code.Unauthenticated);
  await heartbeatFor(stolen, a.id);

  const op = await watchUntilEnd(alice.operations, (await agentApi(ownerToken).installAgent({ id: a.id })).operation!.id);
  assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
  const fresh = JSON.parse(hostExec(a.host, "cat /etc/axion-agent/config.json")).token as string;
  assert.notEqual(fresh, stolen);
  // Refused once the API hears of the new token: at once when notified, after its 10 s cache otherwise.
  const refusedBy = Date.now() + 12_000;
  while (
    !(await heartbeatFor(stolen, a.id).then(
      () => false,
      () => true,
    )) &&
    Date.now() < refusedBy
  )
    await new Promise((r) => setTimeout(r, 250));
  await expectCode(heartbeatFor(stolen, a.id), Code.Unauthenticated);
  await waitForStatus(a.id, ServerStatus.ONLINE, 10_000);
});

test("a failed InstallAgent leaves the running agent working with its old token; a successful one then replaces it", async () => {
  const b = servers[1]!;
  const tokenOnHost = () => JSON.parse(hostExec(b.host, "cat /etc/axion-agent/config.json")).token as string;
  const old = tokenOnHost();
  const heartbeatWith = (token: string) =>
    agentApi(token).heartbeat({ serverId: b.id, sampleTime: timestampFromDate(new Date()), metrics: { cpuPercent: 1 } });
  // Uploads (SFTP) fail on this host; logins and commands still work.
  hostExec(b.host, "chmod 000 /usr/lib/openssh/sftp-server");
  try {
    const failed = await watchUntilEnd(alice.operations, (await agentApi(ownerToken).installAgent({ id: b.id })).operation!.id);
    assert.equal(failed.status, OperationStatus.FAILED);
  } finally {
    hostExec(b.host, "chmod 755 /usr/lib/openssh/sftp-server");
  }
  assert.equal(tokenOnHost(), old, "the running agent's config is untouched");
  await heartbeatWith(old);
  await new Promise((r) => setTimeout(r, 3000));
  const heard = (await agentApi(ownerToken).getAgentStatus({ id: b.id })).lastHeartbeatTime;
  assert.ok(heard && Date.now() - timestampDate(heard).getTime() < 2500, "the running agent is still heard");

  const op = await watchUntilEnd(alice.operations, (await agentApi(ownerToken).installAgent({ id: b.id })).operation!.id);
  assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
  const fresh = tokenOnHost();
  assert.notEqual(fresh, old);
  // The new agent's first call promoted its token, which revoked the old one at once (NOTIFY).
  await expectCode(heartbeatWith(old), Code.Unauthenticated);
  await heartbeatWith(fresh);
  // (The failed operation left the server ERROR, which heartbeats do not revive: the status rules decide that, not the agent.)
});
