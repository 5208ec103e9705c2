import type { Consumer } from "kafkajs";
import { z } from "zod";
import type { HeartbeatIngestor } from "../core/heartbeat-ingest.js";
import { errorSummary, log } from "../core/log.js";
import { createKafka } from "./kafka-config.js";

export const HEARTBEAT_TOPIC = "axion.agent.heartbeats";
const MAX_AGE_MS = 5 * 60_000;

/**
 * Kafka message value: `{"body": "<Heartbeat request JSON>", "signature": "<hex HMAC>"}`,
 * keyed by server id. `body` is the exact JSON an agent would POST to
 * AgentService/Heartbeat; the signature is `signHeartbeat(token, body)`.
 */
const envelope = z.object({ body: z.string().max(65_536), signature: z.string() });
const heartbeatBody = z.object({
  serverId: z.string().uuid(),
  sampleTime: z.string().datetime({ offset: true }),
  metrics: z.record(z.string(), z.unknown()),
});

export interface HeartbeatConsumer {
  stop(): Promise<void>;
}

/** Ingests heartbeats published to Kafka exactly like the RPC does: verified, then batched into the database. */
export async function startHeartbeatConsumer(options: {
  brokers: string[];
  groupId?: string;
  ingestor: HeartbeatIngestor;
  verifySignature: (serverId: string, body: string, signature: string) => Promise<boolean>;
}): Promise<HeartbeatConsumer> {
  const kafka = createKafka({ brokers: options.brokers, clientId: "axion-heartbeats" });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: HEARTBEAT_TOPIC, numPartitions: 3 }] }).finally(() => admin.disconnect());
  const consumer: Consumer = kafka.consumer({ groupId: options.groupId ?? "axion-heartbeat-ingest" });
  await consumer.connect();
  // A new group reads the retained backlog; heartbeats older than MAX_AGE_MS are dropped by the age check.
  await consumer.subscribe({ topic: HEARTBEAT_TOPIC, fromBeginning: true });
  let rejected = 0;
  await consumer.run({
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      // Verified together, so the token lookups a batch needs share one query. Resolves once every
      // accepted heartbeat is in the database; a failed write fails the batch, which Kafka redelivers.
      await Promise.all(
        batch.messages.map(async (message) => {
          try {
            const { body, signature } = envelope.parse(JSON.parse(message.value?.toString("utf8") ?? ""));
            const hb = heartbeatBody.parse(JSON.parse(body));
            const sampledAt = new Date(hb.sampleTime);
            if (Math.abs(Date.now() - sampledAt.getTime()) <= MAX_AGE_MS && (await options.verifySignature(hb.serverId, body, signature))) {
              return options.ingestor.submit({ serverId: hb.serverId, sampledAt, metrics: hb.metrics });
            }
          } catch {
            // malformed: counted below
          }
          rejected++;
          return undefined;
        }),
      );
      for (const message of batch.messages) resolveOffset(message.offset);
      await heartbeat();
      if (rejected > 0 && rejected % 100 === 1)
        log.warn("heartbeats from Kafka rejected (bad signature, stale or malformed)", { rejected });
    },
  });
  return {
    async stop() {
      await consumer.disconnect().catch((error) => log.warn("heartbeat consumer did not disconnect cleanly", errorSummary(error)));
    },
  };
}
