import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { and, inArray, isNull } from "drizzle-orm";
import { Kafka, logLevel } from "kafkajs";
import { enqueueServerEvent, SERVER_EVENTS_TOPIC } from "../core/kernel/outbox.js";
import { type Database, type DatabaseHandle, openDatabase } from "../db/client.js";
import { outboxEvents } from "../db/schema.js";
import type { EventEnvelope } from "../events/envelope.js";
import { type OutboxRelay, startOutboxRelay } from "../events/relay.js";
import { type ReadMessage, readTopic, startKafka, type TestKafka } from "./support/kafka.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

const newKeys = (n: number) => Array.from({ length: n }, () => randomUUID());

/** One state change: an event written in its own transaction, numbered per server. */
const enqueue = (db: Database, serverId: string, seq: number) =>
  db.transaction((tx) => enqueueServerEvent(tx, serverId, "server.status_changed", { serverId, seq, to: "ONLINE", reason: "test" }));

const outboxRows = (db: Database, keys: string[]) => db.select().from(outboxEvents).where(inArray(outboxEvents.key, keys));

async function unpublished(db: Database, keys: string[]): Promise<number> {
  const rows = await db
    .select({ id: outboxEvents.id })
    .from(outboxEvents)
    .where(and(inArray(outboxEvents.key, keys), isNull(outboxEvents.publishedAt)));
  return rows.length;
}

async function waitAllPublished(db: Database, keys: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await unpublished(db, keys)) > 0) {
    if (Date.now() > deadline) throw new Error(`events still unpublished after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** The server topic's messages for these keys, in topic order (per partition). */
async function delivered(brokers: string[], keys: string[]): Promise<ReadMessage[]> {
  const wanted = new Set(keys);
  return (await readTopic(brokers, SERVER_EVENTS_TOPIC)).filter((m) => m.key !== undefined && wanted.has(m.key));
}

/** Asserts every outbox event of these keys is on the topic exactly once, each key's in order, on one partition. */
async function assertDeliveredOnceInOrder(db: Database, messages: ReadMessage[], keys: string[]): Promise<void> {
  const expected = (await outboxRows(db, keys)).map((r) => r.id).sort();
  const ids = messages.map((m) => m.headers["event-id"]!);
  const duplicates = ids.filter((id, i) => ids.indexOf(id) !== i);
  assert.deepEqual(duplicates, [], "no event delivered twice");
  assert.deepEqual([...ids].sort(), expected, "every event delivered");
  for (const key of keys) {
    const ofKey = messages.filter((m) => m.key === key);
    assert.equal(new Set(ofKey.map((m) => m.partition)).size, 1, "one partition per key");
    const seqs = ofKey.map((m) => (JSON.parse(m.value) as EventEnvelope).seq as number);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i),
      `events of ${key} in order`,
    );
  }
}

describe("outbox relay to a real Kafka", { timeout: 10 * 60_000 }, () => {
  let pg: TestPostgres;
  let kafka: TestKafka;
  let handle: DatabaseHandle;
  let db: Database;
  const relays: OutboxRelay[] = [];
  const handles: DatabaseHandle[] = [];
  const relay = (options: Partial<Parameters<typeof startOutboxRelay>[0]> = {}) => {
    const started = startOutboxRelay({ db, brokers: kafka.brokers, pollIntervalMs: 100, ...options });
    relays.push(started);
    return started;
  };

  before(async () => {
    const startedAt = Date.now();
    [pg, kafka] = await Promise.all([startPostgres(), startKafka()]);
    console.log(`postgres and kafka ready in ${Date.now() - startedAt} ms`);
    handle = await openDatabase({ databaseUrl: pg.url, dataDir: tmpdir() });
    await handle.migrate();
    db = handle.db;
  });

  after(async () => {
    await Promise.all(relays.map((r) => r.stop()));
    await Promise.all([handle, ...handles].map((h) => h?.close()));
    await Promise.all([kafka?.stop(), pg?.stop()]);
  });

  test("delivers each event with its key, headers and envelope, then marks it published", async () => {
    const [a, b] = newKeys(2) as [string, string];
    await enqueue(db, a, 0);
    await enqueue(db, b, 0);
    await enqueue(db, a, 1);
    const r = relay();
    await waitAllPublished(db, [a, b]);
    await r.stop();

    const rows = await outboxRows(db, [a, b]);
    assert.equal(rows.length, 3);
    const messages = await delivered(kafka.brokers, [a, b]);
    await assertDeliveredOnceInOrder(db, messages, [a, b]);
    for (const row of rows) {
      assert.ok(row.publishedAt instanceof Date && row.publishedAt >= row.createdAt, "published_at set");
      const message = messages.find((m) => m.headers["event-id"] === row.id)!;
      assert.equal(message.key, row.key);
      assert.deepEqual(message.headers, { "event-id": row.id, "event-type": "server.status_changed" });
      assert.deepEqual(JSON.parse(message.value), {
        id: row.id,
        type: "server.status_changed",
        occurredAt: row.createdAt.toISOString(),
        ...row.payload,
      });
    }

    const admin = new Kafka({ clientId: "axion-test", brokers: kafka.brokers, logLevel: logLevel.ERROR }).admin();
    await admin.connect();
    const { topics } = await admin.fetchTopicMetadata({ topics: [SERVER_EVENTS_TOPIC] });
    await admin.disconnect();
    assert.equal(topics[0]?.partitions.length, 3, "the relay creates the server topic with 3 partitions");
  });

  test("keeps each server's order across many events and batches", async () => {
    const keys = newKeys(5);
    for (let seq = 0; seq < 40; seq++) for (const key of keys) await enqueue(db, key, seq);
    const r = relay({ batchSize: 17 });
    await waitAllPublished(db, keys);
    await r.stop();
    const messages = await delivered(kafka.brokers, keys);
    assert.equal(messages.length, 200);
    await assertDeliveredOnceInOrder(db, messages, keys);
    assert.ok(new Set(messages.map((m) => m.partition)).size > 1, "keys spread over partitions");
  });

  test("loses nothing while the broker is down, and delivers everything when it returns", async (t) => {
    const keys = newKeys(4);
    const seqs = new Map(keys.map((k) => [k, 0]));
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        const key = keys[written % keys.length]!;
        await enqueue(db, key, seqs.get(key)!);
        seqs.set(key, seqs.get(key)! + 1);
        written += 1;
        await sleep(50);
      }
    })();
    const r = relay({ batchSize: 20 });
    await sleep(2_000);

    await kafka.pause();
    const downSince = new Date();
    const writtenBefore = written;
    await sleep(25_000);
    const duringOutage = (await outboxRows(db, keys)).filter((row) => row.createdAt > downSince);
    assert.ok(duringOutage.length > 100, `events kept being written (${duringOutage.length})`);
    assert.equal(duringOutage.filter((row) => row.publishedAt !== null).length, 0, "nothing marked published while the broker is down");

    const resumedAt = Date.now();
    await kafka.resume();
    t.diagnostic(`broker down ${Date.now() - downSince.getTime()} ms (restart took ${Date.now() - resumedAt} ms)`);
    await sleep(2_000);
    writing = false;
    await writer;
    await waitAllPublished(db, keys);
    await r.stop();
    t.diagnostic(`${written} events written, ${written - writtenBefore} of them after the broker went down`);

    const messages = await delivered(kafka.brokers, keys);
    assert.equal(messages.length, written);
    await assertDeliveredOnceInOrder(db, messages, keys);
  });

  test("two relays at once deliver each event once, in each server's order", async (t) => {
    const keys = newKeys(6);
    const seqs = new Map(keys.map((k) => [k, 0]));
    const write = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const key = keys[i % keys.length]!;
        await enqueue(db, key, seqs.get(key)!);
        seqs.set(key, seqs.get(key)! + 1);
      }
    };
    await write(240);

    // Two processes in effect: each relay has its own connection pool and Kafka producer.
    const second = await openDatabase({ databaseUrl: pg.url, dataDir: tmpdir() });
    handles.push(second);
    const one = relay({ batchSize: 10, loop: false, clientId: "relay-one" });
    const two = relay({ db: second.db, batchSize: 10, loop: false, clientId: "relay-two" });
    let writing = true;
    const drive = async (r: OutboxRelay) => {
      let total = 0;
      while (writing || (await unpublished(db, keys)) > 0) {
        const n = await r.relayOnce();
        total += n;
        if (n === 0) await sleep(20);
      }
      return total;
    };
    const driving = Promise.all([drive(one), drive(two)]);
    await write(120);
    writing = false;
    const [byOne, byTwo] = await driving;
    t.diagnostic(`relay one published ${byOne}, relay two ${byTwo}`);
    assert.equal(byOne + byTwo, 360, "each event published by exactly one relay");

    const messages = await delivered(kafka.brokers, keys);
    await assertDeliveredOnceInOrder(db, messages, keys);
  });

  test("relays from PGlite too", async () => {
    const lite = await openDatabase({ dataDir: "memory://" });
    handles.push(lite);
    await lite.migrate();
    const [key] = newKeys(1) as [string];
    for (let seq = 0; seq < 5; seq++) await enqueue(lite.db, key, seq);
    const r = relay({ db: lite.db });
    await waitAllPublished(lite.db, [key]);
    await r.stop();
    const messages = await delivered(kafka.brokers, [key]);
    await assertDeliveredOnceInOrder(lite.db, messages, [key]);
  });
});
