import type { Admin, Consumer } from "kafkajs";
import { z } from "zod";
import type { SignedHeartbeat } from "../core/agents/agent-tokens.js";
import { type HeartbeatIngestor, recordIngestionProgress } from "../core/agents/heartbeat-ingest.js";
import { heartbeatRecord, INTAKE_LIMITS, parseHeartbeatJson } from "../core/agents/heartbeat-intake.js";
import { AppError } from "../core/kernel/errors.js";
import { errorSummary, log } from "../core/kernel/log.js";
import type { Database } from "../db/client.js";
import { kafkaHeartbeat } from "../observability/metrics.js";
import { createKafka } from "./kafka-config.js";

export const HEARTBEAT_TOPIC = "axion.agent.heartbeats";
/** Samples older than this are a backlog nobody should act on (they would revive a server that has since died). */
const MAX_AGE_MS = INTAKE_LIMITS.maxSampleSkewMs;
const MAX_LAG_SAMPLES = 600;

/**
 * Kafka message, keyed by server id; value
 * `{"body": "<Heartbeat request JSON>", "sequence": "<uint64>", "signature": "<hex>"}`.
 * `body` is the exact JSON an agent would POST to AgentService/Heartbeat; the
 * signature is `signHeartbeat(token, serverId, sequence, body)` (docs/events.md).
 */
const envelope = z.object({
  body: z.string().max(65_536),
  sequence: z.union([z.string().regex(/^[1-9][0-9]{0,18}$/), z.number().int().positive().max(Number.MAX_SAFE_INTEGER)]),
  signature: z.string().max(128),
});

export interface HeartbeatConsumer {
  stop(): Promise<void>;
}

type Verify = (messages: SignedHeartbeat[]) => Promise<{ accepted: boolean[]; commit: () => Promise<void> }>;

/** A message that verifies and whose heartbeat passes the intake, or why not (for the count). */
function decode(key: string | undefined, value: string): SignedHeartbeat | undefined {
  try {
    const parsed = envelope.parse(JSON.parse(value));
    const sequence = BigInt(parsed.sequence);
    if (sequence > 9_223_372_036_854_775_807n) return undefined;
    const request = parseHeartbeatJson(parsed.body);
    // The message key, the signed server id and the body's server id are one id.
    if (!key || request.serverId !== key) return undefined;
    return { serverId: key, sequence, body: parsed.body, signature: parsed.signature };
  } catch {
    return undefined;
  }
}

/**
 * Ingests heartbeats published to Kafka through the same intake as the RPC
 * (proto parser, validator, normaliser, batching ingestor). A heartbeat that
 * is malformed, unsigned, replayed or not storable is dropped and counted; it
 * never blocks its partition. A failed write for any other reason (the
 * database is down) fails the batch, which Kafka redelivers.
 *
 * Lag counts as ingestion not yet done: every `lagSampleMs` the topic's end
 * offsets are noted with the time; once the group's committed offsets (which
 * are committed only after the heartbeats are in the database) pass a noted
 * point, every heartbeat published before that time is in the database, and
 * the row `kafka:<group>` of `ingestion_progress` says so. A backlog holds it
 * back, so the liveness sweep does not count silence that is still in Kafka.
 */
export async function startHeartbeatConsumer(options: {
  brokers: string[];
  groupId?: string;
  db: Database;
  ingestor: HeartbeatIngestor;
  verify: Verify;
  lagSampleMs?: number;
}): Promise<HeartbeatConsumer> {
  const groupId = options.groupId ?? "axion-heartbeat-ingest";
  const progressId = `kafka:${groupId}`;
  const kafka = createKafka({ brokers: options.brokers, clientId: "axion-heartbeats" });
  const admin: Admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: HEARTBEAT_TOPIC, numPartitions: 3 }] });
  // Still holding back the sweep where it was before this process started, until the lag says otherwise.
  await recordIngestionProgress(options.db, progressId);
  const consumer: Consumer = kafka.consumer({ groupId });
  await consumer.connect();
  // A new group reads the retained backlog; heartbeats older than MAX_AGE_MS are dropped.
  await consumer.subscribe({ topic: HEARTBEAT_TOPIC, fromBeginning: true });
  let rejected = 0;
  const reject = () => {
    kafkaHeartbeat(false);
    rejected += 1;
    if (rejected % 100 === 1)
      log.warn("heartbeats from Kafka rejected (malformed, bad signature, replayed, stale or invalid)", { rejected });
  };
  await consumer.run({
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      const decoded = batch.messages.map((m) => decode(m.key?.toString("utf8"), m.value?.toString("utf8") ?? ""));
      const signed = decoded.filter((d): d is SignedHeartbeat => d !== undefined);
      const { accepted, commit } = await options.verify(signed);
      const now = options.ingestor.databaseNow();
      // Resolves once every accepted heartbeat is in the database; only an unavailable database fails the batch.
      await Promise.all(
        signed.map(async (message, i) => {
          if (!accepted[i]) return reject();
          const request = parseHeartbeatJson(message.body);
          try {
            const record = heartbeatRecord(message.serverId, request, now);
            if (!record.sampledAt || now - record.sampledAt.getTime() > MAX_AGE_MS) return reject();
            await options.ingestor.submit(record);
            kafkaHeartbeat(true);
          } catch (error) {
            if (error instanceof AppError && error.kind === "invalid_argument") return reject();
            throw error;
          }
        }),
      );
      for (let i = 0; i < decoded.length - signed.length; i++) reject();
      await commit();
      for (const message of batch.messages) resolveOffset(message.offset);
      await heartbeat();
    },
  });

  const lagSamples: { at: Date; ends: Map<number, bigint> }[] = [];
  let sampling = false;
  const sampleLag = async () => {
    if (sampling) return;
    sampling = true;
    try {
      const at = new Date();
      const ends = await admin.fetchTopicOffsets(HEARTBEAT_TOPIC);
      lagSamples.push({ at, ends: new Map(ends.map((p) => [p.partition, BigInt(p.high)])) });
      if (lagSamples.length > MAX_LAG_SAMPLES) lagSamples.shift();
      const lows = new Map(ends.map((p) => [p.partition, BigInt(p.low)]));
      const [committed] = await admin.fetchOffsets({ groupId, topics: [HEARTBEAT_TOPIC] });
      const position = new Map(
        (committed?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset) < 0n ? (lows.get(p.partition) ?? 0n) : BigInt(p.offset)]),
      );
      const covers = (sample: (typeof lagSamples)[number]) =>
        [...sample.ends].every(([partition, end]) => (position.get(partition) ?? lows.get(partition) ?? 0n) >= end);
      let caughtUpTo: Date | undefined;
      while (lagSamples[0] && covers(lagSamples[0])) caughtUpTo = lagSamples.shift()?.at;
      await recordIngestionProgress(options.db, progressId, caughtUpTo);
    } catch (error) {
      log.warn("Kafka heartbeat lag not measured", errorSummary(error));
    } finally {
      sampling = false;
    }
  };
  const lagTimer = setInterval(() => void sampleLag(), options.lagSampleMs ?? 1000);
  void sampleLag();

  return {
    async stop() {
      clearInterval(lagTimer);
      while (sampling) await new Promise((r) => setTimeout(r, 10));
      await consumer.disconnect().catch((error) => log.warn("heartbeat consumer did not disconnect cleanly", errorSummary(error)));
      await admin.disconnect().catch(() => undefined);
    },
  };
}
