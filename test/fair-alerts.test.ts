import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { inArray } from "drizzle-orm";
import { type Alerting, startAlerting } from "../core/alerts/alerting.js";
import { setServerStatus } from "../core/inventory/server-status.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { createNetworkPolicy, parseCidr } from "../core/security/network-policy.js";
import { servers } from "../db/schema.js";
import { NotificationChannelKind } from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import { startTestApi, type TestApi, testCredentialsKey } from "./support/api.js";
import { type HangingReceiver, startHangingReceiver } from "./support/hanging-receiver.js";
import { startWebhookReceiver, type WebhookReceiver } from "./support/webhook-receiver.js";

/**
 * Alert deliveries are a shared queue: one organization's channels at a receiver that never
 * answers must not delay another organization's alerts. One API on PGlite, the alerting loop as a
 * worker runs it (real timings: a 10 s request deadline), a real HTTP receiver that never answers.
 */
const loopbackAllowed = createNetworkPolicy({ allow: [parseCidr("127.0.0.1/32")!, parseCidr("203.0.113.0/24")!] });
const TIMEOUT_MS = 10_000;
const PER_OWNER = 4;
let api: TestApi;
let hanging: HangingReceiver;
let receiver: WebhookReceiver;
let alerting: Alerting | undefined;

async function ownerWithServers(name: string, count: number) {
  const owner = await api.newOwner(name);
  const clients = api.clients(owner.token);
  const clusterId = (await clients.clusters.createCluster({ name: `${name}-c` })).cluster!.id;
  const serverIds: string[] = [];
  for (let i = 0; i < count; i++) {
    const { server } = await clients.servers.createServer({
      clusterId,
      name: `${name}-${i}`,
      host: `203.0.113.${10 + i}`,
      credential: { method: { case: "password", value: "not-used-here" } },
    });
    serverIds.push(server!.id);
  }
  // Servers whose agents heartbeat (set here, not by a heartbeat): the liveness sweep may take them OFFLINE.
  await api.database.db.update(servers).set({ status: "ONLINE" }).where(inArray(servers.id, serverIds));
  return { ...owner, notifications: clients.notifications, serverIds };
}

before(async () => {
  hanging = await startHangingReceiver();
  receiver = await startWebhookReceiver();
  api = await startTestApi({
    networkPolicy: loopbackAllowed,
    notifications: {
      maxChannelsPerOwner: 20,
      timeoutMs: TIMEOUT_MS,
      defaults: { diskPercent: 90, memoryPercent: 95, sustainedSeconds: 300 },
    },
  });
});

after(async () => {
  await hanging?.close(); // ends the hanging requests, so stopping the loop does not wait out their deadline
  await alerting?.stop();
  await api?.close();
  await receiver?.close();
});

test("20 channels of one organization at a receiver that never answers: another organization's OFFLINE alert is delivered within 10 s", {
  timeout: 90_000,
}, async () => {
  const a = await ownerWithServers("flooder", 3);
  for (let i = 0; i < 20; i++) {
    await a.notifications.createNotificationChannel({
      name: `hang-${i}`,
      kind: NotificationChannelKind.WEBHOOK,
      url: `${hanging.url}/hook/${i}`,
      secret: "whsec-hanging-0123456789",
    });
  }
  const b = await ownerWithServers("bystander", 1);
  await b.notifications.createNotificationChannel({
    name: "ops",
    kind: NotificationChannelKind.WEBHOOK,
    url: `${receiver.url}/bystander`,
    secret: "whsec-bystander-0123456789",
  });

  alerting = startAlerting({
    db: api.database.db,
    cipher: createCredentialsCipher(testCredentialsKey),
    networkPolicy: loopbackAllowed,
    graceSeconds: 0.5,
    defaults: { diskPercent: 90, memoryPercent: 95, sustainedSeconds: 300 },
    resourceIntervalSeconds: 3600,
    timeoutMs: TIMEOUT_MS,
    retryInitialMs: 5_000,
    retryMaxMs: 15 * 60_000,
    maxAttempts: 20,
    deliveriesPerOwner: PER_OWNER,
    pollIntervalMs: 200,
  });

  // Three of A's servers go OFFLINE: 60 deliveries to channels that never answer.
  const floodStarted = Date.now();
  for (const id of a.serverIds) await setServerStatus(api.database.db, id, "OFFLINE", "no heartbeat", { by: "liveness" });
  await hanging.accepted(PER_OWNER);

  const from = receiver.received.length;
  const offlineAt = Date.now();
  await setServerStatus(api.database.db, b.serverIds[0]!, "OFFLINE", "no heartbeat", { by: "liveness" });
  const [delivered] = (await receiver.waitFor(from + 1, 10_000)).slice(from);
  assert.match(delivered!.body, /server_offline/);
  assert.ok(delivered!.at - offlineAt < 10_000, `B's OFFLINE alert delivered after ${delivered!.at - offlineAt} ms`);

  // A holds at most its share, and each of its requests still ends at the request deadline.
  const [first] = await hanging.closedBySender(1);
  assert.ok(first! >= TIMEOUT_MS - 500 && first! < TIMEOUT_MS + 3_000, `a hanging request was ended after ${first} ms`);
  assert.ok(hanging.mostOpenAtOnce() <= PER_OWNER, `A had ${hanging.mostOpenAtOnce()} deliveries in flight at once`);
  assert.ok(Date.now() - floodStarted >= TIMEOUT_MS - 500);
});
