import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { after, before, test } from "node:test";
import { eq } from "drizzle-orm";
import type { Producer } from "kafkajs";
import { createKafkaHeartbeatVerifier, issueAgentToken, signHeartbeat } from "../core/agents/agent-tokens.js";
import { sweepLiveness } from "../core/agents/liveness.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { newId } from "../db/ids.js";
import { agents, clusters, ingestionProgress, metricSamplesRaw, owners, servers } from "../db/schema.js";
import { HEARTBEAT_TOPIC, type HeartbeatConsumer, startHeartbeatConsumer } from "../events/heartbeat-consumer.js";
import { createKafka } from "../events/kafka-config.js";
import { startTestApi, type TestApi, testCredentialsKey } from "./support/api.js";
import { startKafka, type TestKafka } from "./support/kafka.js";

let kafka: TestKafka;
let api: TestApi;
let consumer: HeartbeatConsumer | undefined;
let producer: Producer;
const groupId = `test-${newId()}`;
const cipher = createCredentialsCipher(testCredentialsKey);
let serverCount = 0;

const startConsumer = async () => {
  consumer = await startHeartbeatConsumer({
    brokers: kafka.brokers,
    groupId,
    db: api.database.db,
    ingestor: api.ingestor,
    verify: createKafkaHeartbeatVerifier(api.database.db, cipher),
    lagSampleMs: 200,
  });
};

async function newAgent(): Promise<{ id: string; token: string }> {
  const db = api.database.db;
  const ownerId = newId();
  await db.insert(owners).values({ id: ownerId, name: `topic-${ownerId}` });
  const clusterId = newId();
  await db.insert(clusters).values({ id: clusterId, ownerId, name: "topic" });
  const id = newId();
  serverCount += 1;
  await db
    .insert(servers)
    .values({ id, ownerId, clusterId, name: "t", host: `10.55.0.${serverCount}`, authMethod: "password", status: "ONLINE" });
  return { id, token: await issueAgentToken(db, id, { cipher }) };
}

let sequence = 0n;
/** A v2 message as an agent publishes it (docs/events.md). */
function message(serverId: string, token: string, options: { cpu?: number; mount?: string; key?: string; seq?: bigint } = {}) {
  const seq = options.seq ?? ++sequence;
  const body = JSON.stringify({
    serverId,
    sampleTime: new Date().toISOString(),
    metrics: { cpuPercent: options.cpu ?? 42, disks: [{ mount: options.mount ?? "/" }] },
  });
  return {
    key: options.key ?? serverId,
    value: JSON.stringify({ body, sequence: seq.toString(), signature: signHeartbeat(token, serverId, seq, body) }),
  };
}
const publish = (...messages: { key: string; value: string }[]) => producer.send({ topic: HEARTBEAT_TOPIC, messages });
const samplesOf = async (id: string) => api.database.db.select().from(metricSamplesRaw).where(eq(metricSamplesRaw.serverId, id));
const agentRow = async (id: string) => (await api.database.db.select().from(agents).where(eq(agents.serverId, id)))[0];
async function waitFor(what: string, check: () => Promise<boolean>, withinMs = 60_000) {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `${what} within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  kafka = await startKafka();
  api = await startTestApi();
  producer = createKafka({ brokers: kafka.brokers, clientId: "test-agent" }).producer();
  await producer.connect();
  await startConsumer();
});

after(async () => {
  await producer?.disconnect();
  await consumer?.stop();
  await api?.close();
  await kafka?.stop();
});

test("heartbeats published to the Kafka topic are ingested when signed by the server's own token, and only then", async () => {
  const [a, b] = [await newAgent(), await newAgent()];
  const tampered = message(b.id, b.token);
  tampered.value = tampered.value.replace("42", "99");
  await publish(message(b.id, a.token), tampered, { key: b.id, value: "not json" }, message(a.id, a.token));
  await waitFor("the signed heartbeat is ingested", async () => Boolean((await agentRow(a.id))?.lastHeartbeatAt));
  assert.equal((await agentRow(a.id))?.latestMetrics?.cpuPercent, 42);
  assert.equal((await agentRow(b.id))?.lastHeartbeatAt, null, "another server's signature, a tampered body and garbage are all refused");
  assert.ok(!JSON.stringify(message(a.id, a.token)).includes(a.token), "no token travels in a message");
});

test("a heartbeat signed with what the database holds (token hash, stored key) is refused", async () => {
  const victim = await newAgent();
  const row = await agentRow(victim.id);
  assert.ok(row && !row.kafkaKey?.includes(createHmac("sha256", victim.token).update("axion-kafka-heartbeat-v2").digest("base64")));
  const body = JSON.stringify({ serverId: victim.id, sampleTime: new Date().toISOString(), metrics: { cpuPercent: 1 } });
  const seq = ++sequence;
  const signed = `axion-kafka-heartbeat-v2\n${victim.id}\n${seq}\n${body}`;
  const forgeries = [
    // The previous scheme's key: SHA-256(token), which is exactly agents.token_hash.
    createHmac("sha256", Buffer.from(row.tokenHash, "hex")).update(body).digest("hex"),
    createHmac("sha256", Buffer.from(row.tokenHash, "hex")).update(signed).digest("hex"),
    createHmac("sha256", row.tokenHash).update(signed).digest("hex"),
    createHmac("sha256", row.kafkaKey ?? "")
      .update(signed)
      .digest("hex"),
  ];
  await publish(
    ...forgeries.map((signature) => ({ key: victim.id, value: JSON.stringify({ body, sequence: seq.toString(), signature }) })),
    ...forgeries.map((signature) => ({ key: victim.id, value: JSON.stringify({ body, signature }) })),
  );
  // A marker after the forgeries on another server: once it is in, the forgeries have been read.
  const marker = await newAgent();
  await publish(message(marker.id, marker.token));
  await waitFor("the marker is ingested", async () => (await samplesOf(marker.id)).length === 1);
  assert.equal((await samplesOf(victim.id)).length, 0);
  assert.equal(createHash("sha256").update(victim.token).digest("hex"), row.tokenHash, "the database holds the token's hash");
});

test("a replayed message is refused, and so are a message keyed by another server and an older sequence", async () => {
  const [a, b] = [await newAgent(), await newAgent()];
  const first = message(a.id, a.token, { cpu: 1 });
  await publish(first);
  await waitFor("the first heartbeat", async () => (await samplesOf(a.id)).length === 1);
  const older = message(a.id, a.token, { cpu: 2, seq: 1n });
  // Signed by a for a, but published under b's key: the key is part of what is signed.
  const rekeyed = message(a.id, a.token, { cpu: 3, key: b.id });
  await publish(first, older, rekeyed, first);
  const marker = message(a.id, a.token, { cpu: 4 });
  await publish(marker);
  await waitFor("the marker heartbeat", async () => (await samplesOf(a.id)).length >= 2);
  await new Promise((r) => setTimeout(r, 500));
  const cpus = (await samplesOf(a.id)).map((s) => s.cpuPercent).sort();
  assert.deepEqual(cpus, [1, 4], "only the first delivery and the newer message are stored");
  assert.equal((await samplesOf(b.id)).length, 0);
});

test("one bad message does not stall its partition or fail the heartbeats published with it", async () => {
  const [bad, good] = [await newAgent(), await newAgent()];
  // Same key, same partition: the bad one comes first.
  await publish(message(bad.id, bad.token, { mount: "/x\u0000" }), message(bad.id, bad.token, { cpu: 7 }), message(good.id, good.token));
  await waitFor(
    "the good heartbeats after it",
    async () => (await samplesOf(bad.id)).length === 1 && (await samplesOf(good.id)).length === 1,
  );
  assert.equal((await samplesOf(bad.id))[0]?.cpuPercent, 7);
});

test("a backlog in Kafka holds back ingestion progress: silence still in the topic is not a false OFFLINE", async () => {
  const timeout = 5;
  const agent = await newAgent();
  await publish(message(agent.id, agent.token));
  await waitFor("caught up", async () => (await samplesOf(agent.id)).length === 1);
  await new Promise((r) => setTimeout(r, 1000));
  const [row] = await api.database.db
    .select()
    .from(ingestionProgress)
    .where(eq(ingestionProgress.instanceId, `kafka:${groupId}`));
  assert.ok(row && Date.now() - row.caughtUpTo.getTime() < 3000, "the topic's intake reports its progress");

  // The consumer falls behind (here: stops); the agent keeps publishing.
  await consumer?.stop();
  consumer = undefined;
  await publish(message(agent.id, agent.token));
  // Silent for longer than the timeout as far as the database knows (measured from its last heartbeat).
  const lastHeard = (await agentRow(agent.id))?.lastHeartbeatAt as Date;
  await new Promise((r) => setTimeout(r, Math.max(0, lastHeard.getTime() + (timeout + 1) * 1000 - Date.now())));
  const swept = await sweepLiveness(api.database.db, timeout);
  assert.ok(!swept.offlineIds.includes(agent.id), "its newer heartbeat is in the backlog");

  await startConsumer();
  await waitFor("the backlog is ingested", async () => (await samplesOf(agent.id)).length === 2);
  await waitFor("progress moves on", async () => {
    const [now] = await api.database.db
      .select()
      .from(ingestionProgress)
      .where(eq(ingestionProgress.instanceId, `kafka:${groupId}`));
    return Boolean(now && Date.now() - now.caughtUpTo.getTime() < 3000);
  });
});
