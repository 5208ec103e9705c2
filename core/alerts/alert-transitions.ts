import { sql } from "drizzle-orm";
import type { Transaction } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { type alerts, alertTransitions } from "../../db/schema.js";

/** Appends to the alert's history (GetAlert); `at` defaults to the transaction's time. */
export async function recordTransition(tx: Transaction, alert: Pick<typeof alerts.$inferSelect, "id" | "state">, at?: Date): Promise<void> {
  await tx.insert(alertTransitions).values({ id: newId(), alertId: alert.id, state: alert.state, at: at ?? sql`now()` });
}
