import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { and, eq, gte } from "drizzle-orm";
import { defaultAlertRules, updateAlertRules } from "../core/alerts/alert-rules.js";
import { type Alerting, startAlerting } from "../core/alerts/alerting.js";
import { createNotificationChannel } from "../core/alerts/notifications.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { createNetworkPolicy, parseCidr } from "../core/security/network-policy.js";
import { alerts } from "../db/schema.js";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { ensureHeartbeatMonitor } from "../temporal/heartbeat-monitor.js";
import { testCredentialsKey } from "./support/api.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, DOCKER_PREINSTALLED, downHosts, type Fleet, hostExec, upHosts } from "./support/testhosts.js";
import { startWebhookReceiver, type WebhookReceiver } from "./support/webhook-receiver.js";

/** Alerts from a real agent on a real test host: stopped and started, a disk filled; delivered to a real receiver on loopback. */
const prefix = "palert";
const TIMEOUT_S = 6;
const SWEEP_S = 1;
let harness: ProvisioningHarness;
let fleet: Fleet;
let receiver: WebhookReceiver;
let alerting: Alerting;
let alertingWithGrace: (graceSeconds: number) => Alerting;
let owner: { id: string; name: string; role: "admin" };
let server: { id: string; host: string };

type Notice = { type: string; rule: string; serverId: string; alertId: string; summary: string };
const notices = (rule: string) =>
  receiver.received.map((r) => JSON.parse(r.body) as Notice).filter((n) => n.rule === rule && n.serverId === server.id);
/** Resolves once the receiver has got `count` notices of `type` for `rule` (each request wakes it). */
async function waitForNotices(rule: string, type: string, count: number, withinMs: number): Promise<Notice[]> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const found = notices(rule).filter((n) => n.type === type);
    if (found.length >= count) return found;
    const left = deadline - Date.now();
    if (left <= 0) assert.fail(`${count} ${type} ${rule} notice(s) not received within ${withinMs} ms: ${JSON.stringify(notices(rule))}`);
    await receiver.waitFor(receiver.received.length + 1, left).catch(() => {});
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  execFileSync("bash", ["scripts/build-agent.sh"], { stdio: ["ignore", "ignore", "inherit"], timeout: 10 * 60_000 });
  buildImage();
  downHosts(prefix);
  fleet = upHosts(prefix, 1, "fresh", DOCKER_PREINSTALLED);
  receiver = await startWebhookReceiver();
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
  const { token, ownerId } = await harness.api.newOwner();
  owner = { id: ownerId, name: "alerts", role: "admin" };
  const alice = harness.api.clients(token);
  const clusterId = (await alice.clusters.createCluster({ name: "alerts" })).cluster!.id;
  const host = fleet.hosts[0]!;
  const created = (
    await alice.servers.createServer({
      clusterId,
      name: host.name,
      host: host.ip,
      credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
    })
  ).server!;
  server = { id: created.id, host: host.name };
  const op = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: server.id })).operation!.id);
  assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
  const deadline = Date.now() + 20_000;
  while ((await alice.servers.getServer({ id: server.id })).server!.status !== ServerStatus.ONLINE) {
    assert.ok(Date.now() < deadline, "server ONLINE after the bootstrap");
    await sleep(250);
  }

  // The receiver is on loopback: admitted explicitly, as an operator would with SERVER_ADDRESS_ALLOW.
  const networkPolicy = createNetworkPolicy({ allow: [parseCidr("127.0.0.1/32")!] });
  const cipher = createCredentialsCipher(testCredentialsKey);
  const db = harness.api.database.db;
  await createNotificationChannel({ db, cipher, networkPolicy, maxChannelsPerOwner: 5 }, owner, {
    name: "hook",
    kind: "webhook",
    url: `${receiver.url}/hook`,
    secret: "whsec-hosts-test-0123456789",
  });
  alertingWithGrace = (graceSeconds: number) =>
    startAlerting({
      db,
      cipher,
      networkPolicy,
      graceSeconds,
      defaults: { diskPercent: 90, memoryPercent: 95, sustainedSeconds: 300 },
      resourceIntervalSeconds: 1,
      timeoutMs: 2000,
      retryInitialMs: 200,
      retryMaxMs: 2000,
      maxAttempts: 10,
      pollIntervalMs: 200,
    });
  alerting = startAlerting({
    db,
    cipher,
    networkPolicy,
    graceSeconds: 1,
    defaults: { diskPercent: 90, memoryPercent: 95, sustainedSeconds: 300 },
    resourceIntervalSeconds: 1,
    timeoutMs: 2000,
    retryInitialMs: 200,
    retryMaxMs: 2000,
    maxAttempts: 10,
    pollIntervalMs: 200,
  });
});

after(async () => {
  await alerting?.stop();
  await harness?.close();
  await receiver?.close();
  downHosts(prefix);
});

test("an agent stopped gives exactly one OFFLINE alert; started again, exactly one resolved notice", async () => {
  hostExec(server.host, "systemctl stop axion-agent");
  const [fired] = await waitForNotices("server_offline", "alert.firing", 1, (TIMEOUT_S + SWEEP_S + 10) * 1000);
  assert.match(fired!.summary, /is OFFLINE: no heartbeat/);
  hostExec(server.host, "systemctl start axion-agent");
  const [resolved] = await waitForNotices("server_offline", "alert.resolved", 1, 20_000);
  assert.equal(resolved!.alertId, fired!.alertId);
  await sleep(3000);
  assert.deepEqual(
    notices("server_offline").map((n) => n.type),
    ["alert.firing", "alert.resolved"],
  );
});

test("a disk filled past the threshold for the sustained window gives one disk alert; emptied, one resolved notice", async () => {
  const { database } = harness.api;
  // The host's root is an overlay on this machine's disk: the threshold is set just above today's usage.
  const df = hostExec(server.host, "df -B1 --output=size,used / | tail -1").trim().split(/\s+/).map(Number);
  const [size = 0, used = 0] = df;
  const percent = (used / size) * 100;
  const rules = defaultAlertRules();
  await updateAlertRules(database.db, owner.id, {
    ...rules,
    memory: { ...rules.memory, enabled: false },
    disk: { enabled: true, thresholdPercent: Math.round((percent + 0.5) * 10) / 10, sustainedSeconds: 3 },
  });
  await sleep(4000);
  assert.equal(notices("disk").length, 0, "below the threshold: no alert");
  hostExec(server.host, `fallocate -l ${Math.ceil(size * 0.015)} /var/tmp/axion-fill`);
  try {
    const [fired] = await waitForNotices("disk", "alert.firing", 1, 20_000);
    assert.match(fired!.summary, /disk usage of .* above .*% for 3 s/);
    await sleep(3000);
    assert.equal(notices("disk").length, 1, "one alert while the disk stays full");
  } finally {
    hostExec(server.host, "rm -f /var/tmp/axion-fill");
  }
  await waitForNotices("disk", "alert.resolved", 1, 20_000);
  assert.deepEqual(
    notices("disk").map((n) => n.type),
    ["alert.firing", "alert.resolved"],
  );
});

test("an agent stopped and started again and again (each outage shorter than the grace period) gives exactly one FLAPPING notice and, once it settles, one resolved notice", async () => {
  const { db } = harness.api.database;
  const rules = defaultAlertRules();
  // Longer than the quiet gap between two changes of this storm (about 9.5 s: up 2.5 s, then silent past the timeout).
  const settleSeconds = 12;
  await updateAlertRules(db, owner.id, {
    ...rules,
    disk: { ...rules.disk, enabled: false },
    memory: { ...rules.memory, enabled: false },
    flapping: { enabled: true, changes: 2, windowSeconds: 120, settleSeconds },
  });
  // A grace period longer than each outage, as ALERT_GRACE_SECONDS (60 s) is against today's 10 s outages.
  await alerting.stop();
  alerting = alertingWithGrace(20);
  const startedAt = new Date();
  const from = receiver.received.length;
  const fired = waitForNotices("server_flapping", "alert.firing", 1, 120_000);
  // Two outages: the agent silent past the heartbeat timeout (OFFLINE), then back (ONLINE): four changes, more than 2.
  for (let i = 0; i < 2; i++) {
    hostExec(server.host, "systemctl stop axion-agent");
    await sleep((TIMEOUT_S + SWEEP_S + 1.5) * 1000);
    hostExec(server.host, "systemctl start axion-agent");
    await sleep(2500);
  }
  const [notice] = await fired;
  // The first test's outage may still be in the window: at least 3 changes.
  assert.match(notice!.summary, /is flapping: [3-9] liveness changes in 120 s \(more than 2\)/);
  const [resolved] = await waitForNotices("server_flapping", "alert.resolved", 1, (settleSeconds + 20) * 1000);
  assert.equal(resolved!.alertId, notice!.alertId);
  const sent = receiver.received.slice(from).map((r) => JSON.parse(r.body) as Notice);
  assert.deepEqual(
    sent.map((n) => `${n.type} ${n.rule}`),
    ["alert.firing server_flapping", "alert.resolved server_flapping"],
    "one FLAPPING notice and one resolved notice, no OFFLINE notice",
  );
  const offline = await db
    .select({ state: alerts.state })
    .from(alerts)
    .where(and(eq(alerts.serverId, server.id), eq(alerts.rule, "server_offline"), gte(alerts.since, startedAt)));
  assert.deepEqual(
    offline.map((a) => a.state),
    ["dropped", "dropped"],
    "every outage was seen as OFFLINE and ended within the grace period",
  );
});
