import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, test } from "node:test";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { and, eq, sql } from "drizzle-orm";
import { defaultEdgeLimits } from "../api/edge-limits.js";
import { pruneEndedAlerts } from "../core/alerts/alert-retention.js";
import { type AlertingOptions, startAlerting } from "../core/alerts/alerting.js";
import { setServerStatus } from "../core/inventory/server-status.js";
import { finishOperation, startOperation } from "../core/operations/operations.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { createNetworkPolicy, defaultNetworkPolicy, parseCidr } from "../core/security/network-policy.js";
import { alerts, notificationChannels, notificationDeliveries, outboxEvents } from "../db/schema.js";
import {
  AlertKind,
  AlertState,
  NotificationChannelKind,
  NotificationDeliveryStatus,
  NotificationService,
} from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import { startTestApi, type TestApi, testCredentialsKey } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { startWebhookReceiver, type WebhookReceiver } from "./support/webhook-receiver.js";

/** Alerts end to end on one API and PGlite: status changes and failed operations → alerts → a real HTTP receiver on loopback. */
const SECRET = "whsec-Zq8vN3pL6tR1xY9w";
// The receiver listens on loopback, which the network policy refuses; the tests admit it the way operators admit addresses.
const loopbackAllowed = createNetworkPolicy({ allow: [parseCidr("127.0.0.1/32")!, parseCidr("203.0.113.0/24")!] });
let api: TestApi;
let refusingApi: TestApi;
let receiver: WebhookReceiver;
const logLines: string[] = [];
const restoreWrites: (() => void)[] = [];

const notificationsOf = (a: TestApi, token: string) =>
  createClient(
    NotificationService,
    createConnectTransport({
      baseUrl: a.baseUrl,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ],
    }),
  );

const alertingFor = (overrides: Partial<AlertingOptions> = {}) =>
  startAlerting({
    db: api.database.db,
    cipher: createCredentialsCipher(testCredentialsKey),
    networkPolicy: loopbackAllowed,
    graceSeconds: 0.5,
    defaults: { diskPercent: 90, memoryPercent: 95, sustainedSeconds: 300 },
    resourceIntervalSeconds: 3600,
    timeoutMs: 2000,
    retryInitialMs: 200,
    retryMaxMs: 5000,
    maxAttempts: 10,
    loop: false,
    ...overrides,
  });

async function ownerWithServer(name: string) {
  const owner = await api.newOwner();
  const clients = api.clients(owner.token);
  const clusterId = (await clients.clusters.createCluster({ name: `${name}-c` })).cluster!.id;
  const server = (
    await clients.servers.createServer({
      clusterId,
      name,
      host: "203.0.113.10",
      credential: { method: { case: "password", value: "not-used-here" } },
    })
  ).server!;
  return { ...owner, serverId: server.id, notifications: notificationsOf(api, owner.token) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      logLines.push(String(chunk));
      return original(chunk, ...rest);
    }) as typeof stream.write;
    restoreWrites.push(() => {
      stream.write = original;
    });
  }
  receiver = await startWebhookReceiver();
  api = await startTestApi({
    networkPolicy: loopbackAllowed,
    notifications: { maxChannelsPerOwner: 3, timeoutMs: 2000, defaults: { diskPercent: 90, memoryPercent: 95, sustainedSeconds: 300 } },
  });
  // The same database behind an API with the built-in policy (no allow-list).
  refusingApi = await startTestApi({ database: api.database });
});

after(async () => {
  for (const restore of restoreWrites) restore();
  await refusingApi?.close();
  await api?.close().catch(() => {}); // its database was closed with refusingApi
  await receiver?.close();
});

test("every channel field is validated, secrets and URL paths are never returned, and an owner has at most the configured channels", async () => {
  const { notifications } = await ownerWithServer("fields");
  const good = { name: "ops", kind: NotificationChannelKind.WEBHOOK, url: `${receiver.url}/hook/t0ken-in-path`, secret: SECRET };
  const cases: [Partial<typeof good>, RegExp][] = [
    [{ name: "Bad Name" }, /^name:/],
    [{ kind: NotificationChannelKind.UNSPECIFIED }, /^kind:/],
    [{ url: "ftp://example.com/x" }, /^url: must be an http/],
    [{ url: "http://user:pw@example.com/x" }, /^url: must not contain user info/],
    [{ url: "not a url" }, /^url:/],
    [{ url: `http://example.com/${"a".repeat(2100)}` }, /^url: must be at most 2048/],
    [{ url: "http://example.com/\u0000" }, /^url:/],
    [{ secret: "short" }, /^secret: must be 16-256/],
    [{ secret: "has a space in it, sixteen+" }, /^secret:/],
    [{ kind: NotificationChannelKind.SLACK }, /^secret: must be empty for a Slack channel/],
  ];
  for (const [change, pattern] of cases) {
    await expectCode(notifications.createNotificationChannel({ ...good, ...change }), Code.InvalidArgument, pattern);
  }
  await expectCode(notifications.testNotificationChannel({ id: "nope" }), Code.InvalidArgument, /id: must be a UUID/);
  await expectCode(
    notifications.updateAlertRules({
      rules: {
        disk: { enabled: true, thresholdPercent: 0, sustainedSeconds: 60 },
        memory: { enabled: true, thresholdPercent: 95, sustainedSeconds: 60 },
      },
    }),
    Code.InvalidArgument,
    /rules\.disk\.threshold_percent: must be more than 0/,
  );
  await expectCode(
    notifications.updateAlertRules({ rules: { disk: { enabled: true, thresholdPercent: 90, sustainedSeconds: 0 } } }),
    Code.InvalidArgument,
    /rules\.memory: is required/,
  );
  const rules = (await notifications.getAlertRules({})).rules!;
  await expectCode(
    notifications.updateAlertRules({ rules: { ...rules, flapping: undefined } }),
    Code.InvalidArgument,
    /^rules\.flapping: is required/,
  );
  await expectCode(
    notifications.updateAlertRules({ rules: { ...rules, flapping: { ...rules.flapping!, changes: 101 } } }),
    Code.InvalidArgument,
    /^rules\.flapping\.changes: must be 1-100/,
  );
  await expectCode(
    notifications.updateAlertRules({ rules: { ...rules, flapping: { ...rules.flapping!, settleSeconds: 0 } } }),
    Code.InvalidArgument,
    /^rules\.flapping\.settle_seconds: must be 1-86400/,
  );
  assert.equal((await notifications.listNotificationChannels({})).channels.length, 0, "nothing was written");

  const created = (await notifications.createNotificationChannel(good)).channel!;
  assert.equal(created.target, receiver.url, "scheme, host and port only");
  await expectCode(notifications.createNotificationChannel(good), Code.AlreadyExists, /name/);
  await notifications.createNotificationChannel({ ...good, name: "ops2" });
  await notifications.createNotificationChannel({ ...good, name: "chat", kind: NotificationChannelKind.SLACK, secret: "" });
  await expectCode(notifications.createNotificationChannel({ ...good, name: "ops4" }), Code.ResourceExhausted, /at most 3/);
  const listed = await notifications.listNotificationChannels({});
  const asText = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? String(x) : x));
  const shown = asText(listed) + asText(created);
  assert.ok(!shown.includes(SECRET) && !shown.includes("t0ken-in-path"), "neither the secret nor the URL path is in a response");

  const defaults = (await notifications.getAlertRules({})).rules!;
  assert.equal(defaults.serverOffline, true);
  assert.deepEqual([defaults.disk?.thresholdPercent, defaults.disk?.sustainedSeconds, defaults.memory?.thresholdPercent], [90, 300, 95]);
  const { $typeName: _, ...flapping } = defaults.flapping!;
  assert.deepEqual(flapping, { enabled: true, changes: 6, windowSeconds: 600, settleSeconds: 600 }, "ALERT_FLAP_* built-in defaults");
});

test("webhooks to loopback, metadata or this machine are refused at create time without an allow-list, and again at send time", async () => {
  const owner = await refusingApi.newOwner();
  const notifications = notificationsOf(refusingApi, owner.token);
  for (const url of [
    receiver.url,
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:8080/",
    "http://localhost:9/x",
    "http://0x7f.1/",
  ]) {
    await expectCode(
      notifications.createNotificationChannel({ name: "x", kind: NotificationChannelKind.WEBHOOK, url, secret: SECRET }),
      Code.InvalidArgument,
      /^url: (refused by policy|must name a valid host)/,
    );
  }
  // A channel admitted by one policy is checked again when sent: a sender without the allow-list refuses it.
  const { notifications: allowed } = await ownerWithServer("sendtime");
  const channel = (
    await allowed.createNotificationChannel({ name: "hook", kind: NotificationChannelKind.WEBHOOK, url: receiver.url, secret: SECRET })
  ).channel!;
  const before = receiver.received.length;
  const strict = createNotificationsOfPolicy(defaultNetworkPolicy());
  const answer = await strict(allowed, channel.id);
  assert.equal(answer.delivered, false);
  assert.match(answer.error ?? "", /refused by policy: 127\.0\.0\.1 is a loopback address/);
  assert.equal(receiver.received.length, before, "nothing was sent");
  const ok = await allowed.testNotificationChannel({ id: channel.id });
  assert.deepEqual([ok.delivered, ok.httpStatus, ok.error], [true, 200, ""]);
  assert.equal((JSON.parse(receiver.received.at(-1)!.body) as { type: string }).type, "alert.test");
});

/** TestNotificationChannel through an API whose sender has another policy, on the same database. */
function createNotificationsOfPolicy(policy: ReturnType<typeof defaultNetworkPolicy>) {
  return async (_client: unknown, channelId: string) => {
    const { ownerChannelForSending } = await import("../core/alerts/notifications.js");
    const { sendToChannel } = await import("../core/alerts/notification-delivery.js");
    const [row] = await api.database.db
      .execute(sql`select owner_id from notification_channels where id = ${channelId}`)
      .then((r) => (Array.isArray(r) ? r : (r as { rows: unknown[] }).rows));
    const ownerId = (row as { owner_id: string }).owner_id;
    const deps = {
      db: api.database.db,
      cipher: createCredentialsCipher(testCredentialsKey),
      networkPolicy: policy,
      maxChannelsPerOwner: 3,
    };
    const channel = await ownerChannelForSending(deps, { id: ownerId, name: "x", role: "admin" }, channelId);
    return sendToChannel(policy, channel, "00000000-0000-7000-8000-000000000000", { type: "alert.test" }, 2000);
  };
}

test("a status held past the grace period alerts once, signed with the channel secret; Slack gets text and blocks; the end is one resolved notice", async () => {
  const o = await ownerWithServer("web-1");
  await o.notifications.createNotificationChannel({
    name: "hook",
    kind: NotificationChannelKind.WEBHOOK,
    url: `${receiver.url}/hook`,
    secret: SECRET,
  });
  await o.notifications.createNotificationChannel({
    name: "chat",
    kind: NotificationChannelKind.SLACK,
    url: `${receiver.url}/slack`,
    secret: "",
  });
  const alerting = alertingFor();
  const from = receiver.received.length;
  await setServerStatus(api.database.db, o.serverId, "UNREACHABLE", "ssh: connection refused", { by: "fleet_check" });
  await alerting.runOnce();
  assert.equal(receiver.received.length, from, "nothing before the grace period");
  await sleep(600);
  await alerting.runOnce();
  await alerting.runOnce();
  const fired = await receiver.waitFor(from + 2, 5000);
  assert.equal(receiver.received.length, from + 2, "one message per channel");
  const hook = fired.slice(from).find((r) => r.path === "/hook")!;
  const slack = fired.slice(from).find((r) => r.path === "/slack")!;

  // How a receiver verifies: HMAC-SHA256(secret, "<timestamp>.<body>") in X-Axion-Signature, a recent X-Axion-Timestamp.
  const timestamp = String(hook.headers["x-axion-timestamp"]);
  const expected = `sha256=${createHmac("sha256", SECRET).update(`${timestamp}.${hook.body}`).digest("hex")}`;
  assert.equal(hook.headers["x-axion-signature"], expected);
  assert.ok(Math.abs(Date.now() / 1000 - Number(timestamp)) < 30, "the timestamp is now");
  const wrong = `sha256=${createHmac("sha256", "another-secret-xyz").update(`${timestamp}.${hook.body}`).digest("hex")}`;
  assert.notEqual(hook.headers["x-axion-signature"], wrong);
  const notice = JSON.parse(hook.body);
  assert.equal(notice.type, "alert.firing");
  assert.equal(notice.rule, "server_unreachable");
  assert.equal(notice.serverId, o.serverId);
  assert.equal(notice.serverName, "web-1");
  assert.equal(notice.id, hook.headers["x-axion-delivery"], "the dedupe id is in the body and a header");
  assert.match(notice.summary, /web-1 is UNREACHABLE: ssh: connection refused/);

  const chat = JSON.parse(slack.body);
  assert.deepEqual(Object.keys(chat).sort(), ["blocks", "text"]);
  assert.match(chat.text, /FIRING server_unreachable on web-1/);
  assert.equal(chat.blocks[0].type, "section");
  assert.equal(chat.blocks[0].text.type, "mrkdwn");
  assert.equal(slack.headers["x-axion-signature"], undefined, "Slack messages are not signed");

  await setServerStatus(api.database.db, o.serverId, "UNREACHABLE", "still", { by: "fleet_check" });
  await alerting.runOnce();
  await setServerStatus(api.database.db, o.serverId, "PENDING", "address changed", { by: "user" });
  await alerting.runOnce();
  await alerting.runOnce();
  const all = await receiver.waitFor(from + 4, 5000);
  await sleep(200);
  await alerting.runOnce();
  assert.equal(receiver.received.length, from + 4, "one resolved notice per channel, nothing more");
  const resolved = JSON.parse(all.slice(from + 2).find((r) => r.path === "/hook")!.body);
  assert.equal(resolved.type, "alert.resolved");
  assert.equal(resolved.alertId, notice.alertId);
  assert.ok(resolved.resolvedAt);
  await alerting.stop();
});

test("a channel created after an alert fired gets no resolved notice for it; the channels that got the firing notice do", async () => {
  const o = await ownerWithServer("late-channel");
  const hook = (name: string) => ({ name, kind: NotificationChannelKind.WEBHOOK, url: `${receiver.url}/${name}`, secret: SECRET });
  await o.notifications.createNotificationChannel(hook("early"));
  const alerting = alertingFor({ graceSeconds: 0 });
  const from = receiver.received.length;
  await setServerStatus(api.database.db, o.serverId, "UNREACHABLE", "ssh: timeout", { by: "fleet_check" });
  await alerting.runOnce();
  await alerting.runOnce();
  await receiver.waitFor(from + 1, 5000);
  await o.notifications.createNotificationChannel(hook("late"));
  await setServerStatus(api.database.db, o.serverId, "PENDING", "address changed", { by: "user" });
  await alerting.runOnce();
  await alerting.runOnce();
  const all = (await receiver.waitFor(from + 2, 5000)).slice(from);
  await alerting.stop();
  assert.deepEqual(
    all.map((r) => [r.path, (JSON.parse(r.body) as { type: string }).type]),
    [
      ["/early", "alert.firing"],
      ["/early", "alert.resolved"],
    ],
  );
  const late = await api.database.db
    .select({ event: notificationDeliveries.event })
    .from(notificationDeliveries)
    .innerJoin(notificationChannels, eq(notificationChannels.id, notificationDeliveries.channelId))
    .where(eq(notificationChannels.name, "late"));
  assert.deepEqual(late, [], "no delivery was queued for the late channel");
  assert.equal(receiver.received.filter((r) => r.path === "/late").length, 0, "the late channel received nothing");
});

test("ListAlerts pages an owner's alerts newest first with filters; GetAlert shows each state entered and every notice per channel, never a URL or secret", async () => {
  const o = await ownerWithServer("seen-1");
  await o.notifications.createNotificationChannel({
    name: "ok",
    kind: NotificationChannelKind.WEBHOOK,
    url: `${receiver.url}/seen-ok`,
    secret: SECRET,
  });
  // Nothing listens on port 9: every attempt fails, and after one the delivery is given up.
  await o.notifications.createNotificationChannel({
    name: "down",
    kind: NotificationChannelKind.WEBHOOK,
    url: "http://127.0.0.1:9/seen-down",
    secret: SECRET,
  });
  // Flapping has its own tests: here its pending row would only stand between the outages' alerts.
  const { rules } = await o.notifications.getAlertRules({});
  if (rules?.flapping) rules.flapping.enabled = false;
  await o.notifications.updateAlertRules({ rules });
  const alerting = alertingFor({ graceSeconds: 0.3, maxAttempts: 1 });
  const status = async (to: "UNREACHABLE" | "PENDING") => {
    await setServerStatus(api.database.db, o.serverId, to, "x", { by: to === "PENDING" ? "user" : "fleet_check" });
    await alerting.runOnce();
  };
  await status("UNREACHABLE");
  await status("PENDING"); // within the grace period: dropped
  await status("UNREACHABLE");
  const pending = await o.notifications.listAlerts({ serverId: o.serverId, state: AlertState.PENDING });
  assert.deepEqual(
    pending.alerts.map((a) => [a.kind, a.state, a.serverName]),
    [[AlertKind.SERVER_UNREACHABLE, AlertState.PENDING, "seen-1"]],
  );
  await sleep(350);
  await alerting.runOnce(); // fires: one notice per channel
  await status("PENDING"); // resolved: a notice only to the channel that was told of the firing
  await alerting.stop();

  const all = await o.notifications.listAlerts({ serverId: o.serverId });
  assert.deepEqual(
    all.alerts.map((a) => a.state),
    [AlertState.RESOLVED, AlertState.DROPPED],
    "newest first",
  );
  const [resolved, dropped] = all.alerts;
  const first = await o.notifications.listAlerts({ serverId: o.serverId, pageSize: 1 });
  const second = await o.notifications.listAlerts({ serverId: o.serverId, pageSize: 1, pageToken: first.nextPageToken });
  assert.deepEqual([first.alerts[0]?.id, second.alerts[0]?.id, second.nextPageToken], [resolved?.id, dropped?.id, ""]);
  const droppedOnly = await o.notifications.listAlerts({ kind: AlertKind.SERVER_UNREACHABLE, state: AlertState.DROPPED });
  assert.deepEqual(
    droppedOnly.alerts.map((a) => a.id),
    [dropped?.id],
  );
  assert.equal((await o.notifications.listAlerts({ kind: AlertKind.DISK })).alerts.length, 0);

  const got = await o.notifications.getAlert({ id: resolved!.id });
  assert.deepEqual(
    got.history.map((h) => h.state),
    [AlertState.PENDING, AlertState.FIRING, AlertState.RESOLVED],
  );
  const times = got.history.map((h) => Number(h.time!.seconds) * 1000 + h.time!.nanos / 1e6);
  assert.deepEqual(
    times,
    [...times].sort((a, b) => a - b),
    "in order",
  );
  assert.ok(times[2]! - times[0]! >= 300, "pending for the grace period");
  assert.deepEqual(
    got.deliveries.map((d) => [AlertState[d.event], d.channelName, NotificationDeliveryStatus[d.status], d.attempts]).sort(),
    [
      ["FIRING", "down", "FAILED", 1],
      ["FIRING", "ok", "DELIVERED", 1],
      ["RESOLVED", "ok", "DELIVERED", 1],
    ],
  );
  assert.match(got.deliveries.find((d) => d.channelName === "down")!.lastError, /^cannot reach 127\.0\.0\.1:9 \(ECONNREFUSED\)$/);
  assert.deepEqual(
    (await o.notifications.getAlert({ id: dropped!.id })).history.map((h) => h.state),
    [AlertState.PENDING, AlertState.DROPPED],
  );
  const shown = JSON.stringify([all, got], (_k, v) => (typeof v === "bigint" ? String(v) : v));
  for (const hidden of [SECRET, "seen-ok", "seen-down"]) assert.ok(!shown.includes(hidden), `${hidden} in a response`);

  const other = await ownerWithServer("seen-other");
  await expectCode(other.notifications.getAlert({ id: resolved!.id }), Code.NotFound, /^alert .* not found/);
  assert.equal((await other.notifications.listAlerts({ serverId: o.serverId })).alerts.length, 0);
  await expectCode(other.notifications.listAlerts({ serverId: "web-1" }), Code.InvalidArgument, /^server_id: must be a UUID/);
  await expectCode(other.notifications.getAlert({ id: "" }), Code.InvalidArgument, /^id: must be a UUID/);
  await expectCode(other.notifications.listAlerts({ state: 99 as AlertState }), Code.InvalidArgument, /^state:/);
});

test("a status that flaps within the grace period sends nothing, not even a resolved notice", async () => {
  const o = await ownerWithServer("flappy");
  await o.notifications.createNotificationChannel({
    name: "hook",
    kind: NotificationChannelKind.WEBHOOK,
    url: receiver.url,
    secret: SECRET,
  });
  const alerting = alertingFor({ graceSeconds: 2 });
  const from = receiver.received.length;
  // Three outages are six changes: not more than the flapping rule's default of 6.
  for (let i = 0; i < 3; i++) {
    await setServerStatus(api.database.db, o.serverId, "UNREACHABLE", "flap", { by: "fleet_check" });
    await alerting.runOnce();
    await sleep(150);
    await setServerStatus(api.database.db, o.serverId, "PENDING", "back", { by: "user" });
    await alerting.runOnce();
  }
  await sleep(2100);
  await alerting.runOnce();
  assert.equal(receiver.received.length, from, "no message");
  const states = await api.database.db
    .select({ state: alerts.state })
    .from(alerts)
    .where(and(eq(alerts.serverId, o.serverId), eq(alerts.rule, "server_unreachable")));
  assert.deepEqual(
    states.map((s) => s.state),
    ["dropped", "dropped", "dropped"],
  );
  await alerting.stop();
});

/** ONLINE → OFFLINE → ONLINE `times` times, each outage read by the evaluation and shorter than the grace period. */
async function stopAndStartAgent(alerting: ReturnType<typeof alertingFor>, serverId: string, times: number) {
  for (let i = 0; i < times; i++) {
    await setServerStatus(api.database.db, serverId, "OFFLINE", "no heartbeat for 10 s", { by: "liveness" });
    await alerting.runOnce();
    await setServerStatus(api.database.db, serverId, "ONLINE", "heartbeat", { by: "liveness" });
    await alerting.runOnce();
  }
}

async function flappingOwner(name: string, settleSeconds: number, slack = false) {
  const o = await ownerWithServer(name);
  if (slack)
    await o.notifications.createNotificationChannel({
      name: "chat",
      kind: NotificationChannelKind.SLACK,
      url: `${receiver.url}/${name}-slack`,
      secret: "",
    });
  await o.notifications.createNotificationChannel({
    name: "hook",
    kind: NotificationChannelKind.WEBHOOK,
    url: `${receiver.url}/${name}`,
    secret: SECRET,
  });
  const rules = (await o.notifications.getAlertRules({})).rules!;
  await o.notifications.updateAlertRules({
    rules: { ...rules, flapping: { ...rules.flapping!, enabled: true, changes: 6, windowSeconds: 600, settleSeconds } },
  });
  await setServerStatus(api.database.db, o.serverId, "UNREACHABLE", "not yet heard", { by: "fleet_check" });
  await setServerStatus(api.database.db, o.serverId, "ONLINE", "heartbeat", { by: "liveness" });
  return o;
}

const bodiesAt = (path: string) =>
  receiver.received.filter((r) => r.path === path).map((r) => JSON.parse(r.body) as Record<string, string>);

test("today's storm (an agent stopped and started 10 times, each outage within the grace period) sends exactly one FLAPPING notice and, once settled, one resolved notice", async () => {
  const o = await flappingOwner("storm", 1, true);
  const alerting = alertingFor({ graceSeconds: 2 });
  const from = receiver.received.length;
  await stopAndStartAgent(alerting, o.serverId, 10);
  await receiver.waitFor(from + 2, 5000);
  const [fired] = bodiesAt("/storm");
  assert.equal(fired?.type, "alert.firing");
  assert.equal(fired?.rule, "server_flapping");
  assert.match(fired?.summary ?? "", /storm is flapping: 7 liveness changes in 600 s/);
  await sleep(1100); // the settle period: no change for 1 s
  await alerting.runOnce();
  await receiver.waitFor(from + 4, 5000);
  await alerting.runOnce();
  assert.equal(receiver.received.length, from + 4, "one notice per channel per alert state change");
  const got = bodiesAt("/storm");
  assert.deepEqual(
    got.map((n) => `${n.type} ${n.rule}`),
    ["alert.firing server_flapping", "alert.resolved server_flapping"],
    "one FLAPPING notice, one resolved notice, nothing else",
  );
  assert.equal(got[1]?.alertId, fired?.alertId);
  assert.deepEqual(
    bodiesAt("/storm-slack").map((m) => m.text),
    [
      `:repeat: FLAPPING server_flapping on storm: ${fired?.summary}`,
      `:white_check_mark: RESOLVED server_flapping on storm: ${fired?.summary}`,
    ],
  );
  await alerting.stop();
});

test("a server that flaps and then stays down: its OFFLINE alert is held while FLAPPING fires and pages once the flapping has settled", async () => {
  const o = await flappingOwner("flap-then-down", 3);
  const alerting = alertingFor({ graceSeconds: 1 });
  const from = receiver.received.length;
  await stopAndStartAgent(alerting, o.serverId, 4);
  await setServerStatus(api.database.db, o.serverId, "OFFLINE", "no heartbeat for 10 s", { by: "liveness" });
  await alerting.runOnce();
  await receiver.waitFor(from + 1, 5000);
  await sleep(1200); // past the grace period, within the settle period
  await alerting.runOnce();
  assert.deepEqual(
    bodiesAt("/flap-then-down").map((n) => `${n.type} ${n.rule}`),
    ["alert.firing server_flapping"],
    "the OFFLINE alert does not page while the server is flapping",
  );
  await sleep(2000); // the rest of the settle period
  await alerting.runOnce();
  await receiver.waitFor(from + 3, 5000);
  await alerting.runOnce();
  // Both come from one pass (the flapping resolved first, then the held alert), sent side by side.
  assert.deepEqual(
    bodiesAt("/flap-then-down")
      .map((n) => `${n.type} ${n.rule}`)
      .sort(),
    ["alert.firing server_flapping", "alert.firing server_offline", "alert.resolved server_flapping"],
  );
  await setServerStatus(api.database.db, o.serverId, "ONLINE", "heartbeat", { by: "liveness" });
  await alerting.runOnce();
  await receiver.waitFor(from + 4, 5000);
  assert.equal(bodiesAt("/flap-then-down").at(-1)?.type, "alert.resolved", "back up: the OFFLINE alert's resolved notice");
  await alerting.stop();
});

test("a host key mismatch pages even while the server is flapping", async () => {
  const o = await flappingOwner("flap-hostkey", 2);
  const alerting = alertingFor({ graceSeconds: 1 });
  const from = receiver.received.length;
  await stopAndStartAgent(alerting, o.serverId, 4);
  await setServerStatus(api.database.db, o.serverId, "HOSTKEY_MISMATCH", "host key changed", { by: "host_key_check" });
  await alerting.runOnce();
  await sleep(1100); // the grace period
  await alerting.runOnce();
  await receiver.waitFor(from + 2, 5000);
  assert.deepEqual(
    bodiesAt("/flap-hostkey").map((n) => `${n.type} ${n.rule}`),
    ["alert.firing server_flapping", "alert.firing hostkey_mismatch"],
  );
  await setServerStatus(api.database.db, o.serverId, "PENDING", "key accepted", { by: "host_key_acceptance" });
  await sleep(2100); // the flapping settles
  await alerting.runOnce();
  await receiver.waitFor(from + 4, 5000);
  await alerting.stop();
});

test("a receiver that fails three times then accepts gets the message exactly once, with the same dedupe id, after growing pauses; a restart continues", async () => {
  const o = await ownerWithServer("flaky-receiver");
  await o.notifications.createNotificationChannel({
    name: "hook",
    kind: NotificationChannelKind.WEBHOOK,
    url: `${receiver.url}/retry`,
    secret: SECRET,
  });
  const from = receiver.received.length;
  receiver.answerNext(500, 503, 500);
  const op = await startOperation(api.database.db, { id: o.ownerId, name: "x", role: "admin" }, o.serverId, "deploy_key");
  await finishOperation(api.database.db, op.id, { status: "FAILED", error: "ssh: permission denied (publickey)" });
  let alerting = alertingFor({ loop: true, pollIntervalMs: 50 });
  await receiver.waitFor(from + 2, 5000);
  // The process stops after two failed attempts; another one (state in the database) carries on.
  await alerting.stop();
  alerting = alertingFor({ loop: true, pollIntervalMs: 50 });
  const second = alertingFor({ loop: true, pollIntervalMs: 50 });
  const attempts = (await receiver.waitFor(from + 4, 10_000)).slice(from);
  await sleep(800);
  await alerting.stop();
  await second.stop();
  assert.equal(receiver.received.length, from + 4, "accepted once, never sent again, not by two processes");
  assert.deepEqual(
    attempts.map((a) => a.answered),
    [500, 503, 500, 200],
  );
  const ids = new Set(attempts.map((a) => a.headers["x-axion-delivery"]));
  assert.equal(ids.size, 1, "one dedupe id on every attempt");
  assert.equal(new Set(attempts.map((a) => (JSON.parse(a.body) as { id: string }).id)).size, 1);
  const gaps = attempts.slice(1).map((a, i) => a.at - attempts[i]!.at);
  assert.ok(gaps[0]! >= 180 && gaps[1]! >= 380 && gaps[2]! >= 780, `backoff doubles from 200 ms: ${gaps.join(", ")} ms`);
  const notice = JSON.parse(attempts[3]!.body);
  assert.equal(notice.rule, "operation_failed");
  assert.match(notice.summary, /deploy_key operation on flaky-receiver failed: ssh: permission denied/);
  const [row] = await api.database.db
    .select()
    .from(notificationDeliveries)
    .where(eq(notificationDeliveries.id, String([...ids][0])));
  assert.deepEqual([row?.status, row?.attempts], ["delivered", 4]);
});

test("TestNotificationChannel is limited per owner: the receiver gets the burst, the next call is ResourceExhausted naming the limit, another owner is unaffected", async () => {
  const { burst } = defaultEdgeLimits.notificationTests;
  const webhook = (path: string) => ({
    name: "flood",
    kind: NotificationChannelKind.WEBHOOK,
    url: `${receiver.url}${path}`,
    secret: SECRET,
  });
  const reached = (path: string) => receiver.received.filter((r) => r.path === path).length;
  const hostile = await ownerWithServer("flooder");
  const target = (await hostile.notifications.createNotificationChannel(webhook("/hook/flooded"))).channel!;
  for (let i = 0; i < burst; i++) assert.equal((await hostile.notifications.testNotificationChannel({ id: target.id })).delivered, true);
  await expectCode(
    hostile.notifications.testNotificationChannel({ id: target.id }),
    Code.ResourceExhausted,
    /^rate limit of notification channel tests reached: 5 at once, then 2 per minute per owner \(NOTIFICATION_TEST_BURST, NOTIFICATION_TESTS_PER_MINUTE\)/,
  );
  assert.equal(reached("/hook/flooded"), burst, "the refused call sent nothing");

  const other = await ownerWithServer("bystander");
  const own = (await other.notifications.createNotificationChannel(webhook("/hook/bystander"))).channel!;
  assert.equal((await other.notifications.testNotificationChannel({ id: own.id })).delivered, true);
  assert.equal(reached("/hook/bystander"), 1);
});

test("channel secrets and URLs appear in no response, log line, outbox event or delivery row", async () => {
  const outbox = await api.database.db.select({ payload: outboxEvents.payload }).from(outboxEvents);
  const deliveries = await api.database.db
    .select({ message: notificationDeliveries.message, error: notificationDeliveries.lastError })
    .from(notificationDeliveries);
  // Kafka carries exactly the outbox rows (events/relay.ts), so a secret not in the outbox is not on the topic.
  const stored = JSON.stringify(outbox) + JSON.stringify(deliveries);
  const logs = logLines.join("");
  assert.ok(logs.includes("notification not delivered"), "the failed attempts above were logged");
  for (const secret of [SECRET, "t0ken-in-path"]) {
    assert.ok(!stored.includes(secret), `${secret} stored in the clear`);
    assert.ok(!logs.includes(secret), `${secret} in a log line`);
  }
});

test("ended alerts past the retention are deleted with their deliveries; open ones stay", async () => {
  const o = await ownerWithServer("retained");
  await setServerStatus(api.database.db, o.serverId, "UNREACHABLE", "down", { by: "fleet_check" });
  const alerting = alertingFor();
  await alerting.runOnce();
  await alerting.stop();
  const ended = await api.database.db
    .select({ id: alerts.id })
    .from(alerts)
    .where(sql`${alerts.state} in ('resolved', 'dropped', 'notified')`);
  assert.ok(ended.length > 0);
  assert.equal(await pruneEndedAlerts(api.database.db, 0), ended.length);
  const left = await api.database.db.select({ rule: alerts.rule, state: alerts.state, serverId: alerts.serverId }).from(alerts);
  assert.ok(
    left.every((a) => a.state === "pending" || a.state === "firing"),
    "only open alerts are left (the flapping alerts of other tests' servers among them)",
  );
  // The one change so far is counted by the (pending) flapping rule.
  assert.deepEqual(
    left.filter((a) => a.serverId === o.serverId).sort((a, b) => a.rule.localeCompare(b.rule)),
    [
      { rule: "server_flapping", state: "pending", serverId: o.serverId },
      { rule: "server_unreachable", state: "pending", serverId: o.serverId },
    ],
  );
  const orphans = await api.database.db.execute(sql`select count(*)::int as n from notification_deliveries`);
  const n = (Array.isArray(orphans) ? orphans : (orphans as { rows: { n: number }[] }).rows)[0] as { n: number };
  assert.equal(n.n, 0, "their deliveries went with them");
});
