import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { eq } from "drizzle-orm";
import { createAgentSignatureVerifier, issueAgentToken, signHeartbeat } from "../core/agent-tokens.js";
import { newId } from "../db/ids.js";
import { agents, clusters, owners, servers } from "../db/schema.js";
import { HEARTBEAT_TOPIC, type HeartbeatConsumer, startHeartbeatConsumer } from "../events/heartbeat-consumer.js";
import { createKafka } from "../events/kafka-config.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { startKafka, type TestKafka } from "./support/kafka.js";

let kafka: TestKafka;
let api: TestApi;
let consumer: HeartbeatConsumer;
const fleet: { id: string; token: string }[] = [];

before(async () => {
  kafka = await startKafka();
  api = await startTestApi();
  const db = api.database.db;
  const ownerId = newId();
  await db.insert(owners).values({ id: ownerId, name: "topic" });
  const clusterId = newId();
  await db.insert(clusters).values({ id: clusterId, ownerId, name: "topic" });
  for (let i = 0; i < 2; i++) {
    const id = newId();
    await db.insert(servers).values({ id, ownerId, clusterId, name: `t${i}`, host: `10.55.0.${i + 1}`, authMethod: "password" });
    fleet.push({ id, token: await issueAgentToken(db, id) });
  }
  consumer = await startHeartbeatConsumer({
    brokers: kafka.brokers,
    groupId: `test-${newId()}`,
    ingestor: api.ingestor,
    verifySignature: createAgentSignatureVerifier(db),
  });
});

after(async () => {
  await consumer?.stop();
  await api?.close();
  await kafka?.stop();
});

test("heartbeats published to the Kafka topic are ingested when signed by the server's own token, and only then", async () => {
  const [a, b] = fleet as [{ id: string; token: string }, { id: string; token: string }];
  const message = (serverId: string, token: string, tamper = false) => {
    const body = JSON.stringify({ serverId, sampleTime: new Date().toISOString(), metrics: { cpuPercent: 42 } });
    const signature = signHeartbeat(token, body);
    return { key: serverId, value: JSON.stringify({ body: tamper ? body.replace("42", "99") : body, signature }) };
  };
  const producer = createKafka({ brokers: kafka.brokers, clientId: "test-agent" }).producer();
  await producer.connect();
  await producer.send({
    topic: HEARTBEAT_TOPIC,
    messages: [message(b.id, a.token), message(b.id, b.token, true), { key: b.id, value: "not json" }, message(a.id, a.token)],
  });
  await producer.disconnect();

  const lastHeartbeat = async (id: string) => (await api.database.db.select().from(agents).where(eq(agents.serverId, id)))[0];
  const deadline = Date.now() + 60_000;
  while (!(await lastHeartbeat(a.id))?.lastHeartbeatAt && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const ingested = await lastHeartbeat(a.id);
  assert.ok(ingested?.lastHeartbeatAt, "the signed heartbeat was ingested");
  assert.equal(ingested.latestMetrics?.cpuPercent, 42);
  const other = await lastHeartbeat(b.id);
  assert.equal(other?.lastHeartbeatAt, null, "another server's signature, a tampered body and garbage are all refused");
  const raw = JSON.stringify(message(a.id, a.token));
  assert.ok(!raw.includes(a.token), "no token travels in a message");
});
