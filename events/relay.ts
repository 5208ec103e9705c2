import { PGlite } from "@electric-sql/pglite";
import { and, asc, inArray, isNull, sql } from "drizzle-orm";
import { Partitioners, type Producer } from "kafkajs";
import { errorSummary, log } from "../core/kernel/log.js";
import type { Database } from "../db/client.js";
import { outboxEvents } from "../db/schema.js";
import { outboxEventsPublished } from "../observability/metrics.js";
import { toKafkaMessage } from "./envelope.js";
import { createKafka } from "./kafka-config.js";

export interface OutboxRelayOptions {
  db: Database;
  brokers: string[];
  clientId?: string;
  /** Events per Kafka request and per transaction. */
  batchSize?: number;
  /** Pause between polls when the outbox is empty. */
  pollIntervalMs?: number;
  /** Partitions of the topics the relay creates (existing topics are left as they are). */
  partitions?: number;
  /**
   * Claim the batch with FOR UPDATE SKIP LOCKED in a transaction held across the send, so several
   * relays (processes) can run at once. Default: on for PostgreSQL, off for PGlite, whose single
   * connection would be blocked for every other query while Kafka is slow or down.
   */
  claimRows?: boolean;
  /** Poll in the background (default). false: only relayOnce() publishes. */
  loop?: boolean;
}

export interface OutboxRelay {
  /** Publishes one batch of unpublished events; returns how many. Throws if Kafka refused it. */
  relayOnce(): Promise<number>;
  /** Stops polling (after the batch in flight) and disconnects from Kafka. */
  stop(): Promise<void>;
}

type OutboxRow = typeof outboxEvents.$inferSelect;

const maxBackoffMs = 5_000;
/** Namespace (first key) of the relay's per-key (per-server) advisory locks. */
const keyLockSpace = 0x0a7e0b0c;

/**
 * Relays the transactional outbox (`outbox_events`) to Kafka, oldest first, at least once:
 * an event is marked published only after Kafka acknowledged it (acks=all, idempotent producer).
 * While Kafka is down nothing is marked; the relay retries with a backoff capped at 5 s.
 */
export function startOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, batchSize = 100, pollIntervalMs = 500, partitions = 3 } = options;
  const claimRows = options.claimRows ?? !((db as { $client?: unknown }).$client instanceof PGlite);
  const kafka = createKafka({ brokers: options.brokers, clientId: options.clientId ?? "axion-outbox-relay" });
  const knownTopics = new Set<string>();
  let producer: Producer | undefined;
  let stopped = false;

  const connectedProducer = async (): Promise<Producer> => {
    if (producer) return producer;
    // maxInFlightRequests 1 with idempotence: a retried request cannot overtake the next one.
    const created = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { initialRetryTime: 200, maxRetryTime: 2_000, retries: 3 },
    });
    try {
      await created.connect();
    } catch (error) {
      await created.disconnect().catch(() => {});
      throw error;
    }
    producer = created;
    return created;
  };

  // A failed send leaves the producer's sequence numbers unknown (the broker may have written the
  // batch); a new producer id starts clean, at the price of a possible duplicate on the topic.
  const dropProducer = async () => {
    const old = producer;
    producer = undefined;
    await old?.disconnect().catch(() => {});
  };

  const ensureTopics = async (topics: string[]) => {
    const missing = topics.filter((t) => !knownTopics.has(t));
    if (missing.length === 0) return;
    const admin = kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const absent = missing.filter((t) => !existing.has(t));
      if (absent.length > 0) {
        await admin.createTopics({ topics: absent.map((topic) => ({ topic, numPartitions: partitions })), waitForLeaders: true });
      }
    } finally {
      await admin.disconnect();
    }
    for (const t of missing) knownTopics.add(t);
  };

  const publish = async (rows: OutboxRow[]) => {
    const byTopic = new Map<string, OutboxRow[]>();
    for (const row of rows) {
      const topicRows = byTopic.get(row.topic) ?? [];
      topicRows.push(row);
      byTopic.set(row.topic, topicRows);
    }
    await ensureTopics([...byTopic.keys()]);
    try {
      const connected = await connectedProducer();
      await connected.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, topicRows]) => ({ topic, messages: topicRows.map(toKafkaMessage) })),
      });
    } catch (error) {
      await dropProducer();
      throw error;
    }
  };

  const oldestUnpublished = () =>
    db
      .select()
      .from(outboxEvents)
      .where(isNull(outboxEvents.publishedAt))
      .orderBy(asc(outboxEvents.createdAt), asc(outboxEvents.id))
      .limit(batchSize);

  const markPublished = (tx: Pick<Database, "update">, rows: OutboxRow[]) =>
    tx
      .update(outboxEvents)
      .set({ publishedAt: sql`clock_timestamp()` })
      .where(
        inArray(
          outboxEvents.id,
          rows.map((r) => r.id),
        ),
      );

  const relayBatch = async (): Promise<number> => {
    if (!claimRows) {
      const rows = await oldestUnpublished();
      if (rows.length === 0) return 0;
      await publish(rows);
      await markPublished(db, rows);
      return rows.length;
    }
    return db.transaction(async (tx) => {
      // Claim keys, not just rows: SKIP LOCKED alone lets a second relay send a server's later
      // events while the first still holds its earlier ones. Each key (server) goes to one relay at
      // a time through a transaction-scoped advisory lock that is skipped, not waited for, when held.
      const pending = tx
        .select({ key: outboxEvents.key, oldest: sql`min(${outboxEvents.createdAt})`.as("oldest") })
        .from(outboxEvents)
        .where(isNull(outboxEvents.publishedAt))
        .groupBy(outboxEvents.key)
        .orderBy(sql`oldest`)
        .limit(batchSize)
        .as("pending");
      const claimed = await tx
        .select({ key: pending.key })
        .from(pending)
        .where(sql`pg_try_advisory_xact_lock(${keyLockSpace}, hashtext(${pending.key}))`);
      if (claimed.length === 0) return 0;
      // A new statement, so a new snapshot: it sees everything the key's previous holder committed
      // before it released the key, and this batch starts at each key's oldest unpublished event.
      const rows = await tx
        .select()
        .from(outboxEvents)
        .where(
          and(
            isNull(outboxEvents.publishedAt),
            inArray(
              outboxEvents.key,
              claimed.map((c) => c.key),
            ),
          ),
        )
        .orderBy(asc(outboxEvents.createdAt), asc(outboxEvents.id))
        .limit(batchSize)
        .for("update", { skipLocked: true });
      if (rows.length === 0) return 0;
      await publish(rows);
      await markPublished(tx, rows);
      return rows.length;
    });
  };

  // One batch at a time per relay, whether from the loop or from relayOnce().
  let queue: Promise<unknown> = Promise.resolve();
  const relayOnce = (): Promise<number> => {
    if (stopped) return Promise.reject(new Error("outbox relay is stopped"));
    const run = queue.then(relayBatch, relayBatch);
    queue = run.catch(() => {});
    return run;
  };

  let wake: (() => void) | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const loop = async () => {
    let failures = 0;
    while (!stopped) {
      let delay = pollIntervalMs;
      try {
        const published = await relayOnce();
        outboxEventsPublished(published);
        if (failures > 0) log.info("outbox relay: publishing again", { failures });
        failures = 0;
        if (published === batchSize) delay = 0;
      } catch (error) {
        if (stopped) break;
        failures += 1;
        delay = Math.min(maxBackoffMs, 250 * 2 ** (failures - 1));
        log.warn("outbox relay: batch not published, will retry", { failures, retryInMs: delay, ...errorSummary(error) });
      }
      if (delay > 0 && !stopped) await sleep(delay);
    }
  };
  const looping = options.loop === false ? Promise.resolve() : loop();

  return {
    relayOnce,
    stop: async () => {
      stopped = true;
      wake?.();
      await looping;
      await queue;
      await dropProducer();
    },
  };
}
