import type { Transaction } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { outboxEvents } from "../../db/schema.js";
import type { EventType } from "./kinds.js";

export const SERVER_EVENTS_TOPIC = "axion.server.events";
/** `audit.recorded`, keyed by the chain (an organization id): one chain's entries keep their order. */
export const AUDIT_EVENTS_TOPIC = "axion.audit.events";

/**
 * Writes an event to the outbox inside the caller's transaction, so it exists
 * exactly when the state change does. Keyed by server id: one server's events
 * keep their order on the topic. The id is the event id consumers dedupe on.
 */
export async function enqueueServerEvent(
  tx: Transaction,
  serverId: string,
  type: EventType,
  payload: Record<string, unknown>,
): Promise<void> {
  await tx.insert(outboxEvents).values({ id: newId(), topic: SERVER_EVENTS_TOPIC, key: serverId, type, payload });
}
