import type { Database } from "../db/client.js";
import { newId } from "../db/ids.js";
import { outboxEvents } from "../db/schema.js";

export const SERVER_EVENTS_TOPIC = "axion.server.events";

type Tx = Parameters<Parameters<Database["transaction"]>[0]>[0];

/**
 * Writes an event to the outbox inside the caller's transaction, so it exists
 * exactly when the state change does. Keyed by server id: one server's events
 * keep their order on the topic. The id is the event id consumers dedupe on.
 */
export async function enqueueServerEvent(tx: Tx, serverId: string, type: string, payload: Record<string, unknown>): Promise<void> {
  await tx.insert(outboxEvents).values({ id: newId(), topic: SERVER_EVENTS_TOPIC, key: serverId, type, payload });
}
