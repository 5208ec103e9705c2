import type { Message } from "kafkajs";
import type { outboxEvents } from "../db/schema.js";

/**
 * What a consumer reads as the message value (JSON): the event's own fields next to the
 * event's payload. `id` is the outbox row id (UUIDv7), the same in the `event-id` header;
 * delivery is at least once, so consumers dedupe on it.
 */
export interface EventEnvelope {
  id: string;
  type: string;
  /** When the state change happened: the outbox row's created_at (its transaction's start), ISO 8601. */
  occurredAt: string;
  [payloadField: string]: unknown;
}

export const EVENT_ID_HEADER = "event-id";
export const EVENT_TYPE_HEADER = "event-type";

/** An outbox row as a Kafka message, keyed by the row's key (a server id: one partition per server). */
export function toKafkaMessage(row: typeof outboxEvents.$inferSelect): Message {
  const own = { id: row.id, type: row.type, occurredAt: row.createdAt.toISOString() };
  // Spread twice: the event's fields come first in the JSON and a payload field cannot replace them.
  const envelope: EventEnvelope = { ...own, ...row.payload, ...own };
  return {
    key: row.key,
    value: JSON.stringify(envelope),
    headers: { [EVENT_ID_HEADER]: row.id, [EVENT_TYPE_HEADER]: row.type },
    timestamp: String(row.createdAt.getTime()),
  };
}
