import { and, asc, eq, gte, lte } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { agents, metricsSamples } from "../db/schema.js";
import { enqueueServerEvent } from "./outbox.js";

export type AgentRow = typeof agents.$inferSelect;

/**
 * Registration: what the agent reports about its host, stored on its row, with
 * an `agent.registered` event in the same transaction.
 */
export async function recordRegistration(db: Database, serverId: string, info: Record<string, unknown>): Promise<void> {
  await db.transaction(async (tx) => {
    const now = new Date();
    await tx.update(agents).set({ info, registeredAt: now, lastHeartbeatAt: now }).where(eq(agents.serverId, serverId));
    await enqueueServerEvent(tx, serverId, "agent.registered", { serverId, ...info, at: now.toISOString() });
  });
}

export async function getAgent(db: Database, serverId: string): Promise<AgentRow | undefined> {
  const [row] = await db.select().from(agents).where(eq(agents.serverId, serverId));
  return row;
}

export async function listMetrics(db: Database, serverId: string, range: { from?: Date; to?: Date; limit: number }) {
  return db
    .select({ sampledAt: metricsSamples.sampledAt, metrics: metricsSamples.metrics })
    .from(metricsSamples)
    .where(
      and(
        eq(metricsSamples.serverId, serverId),
        range.from ? gte(metricsSamples.sampledAt, range.from) : undefined,
        range.to ? lte(metricsSamples.sampledAt, range.to) : undefined,
      ),
    )
    .orderBy(asc(metricsSamples.sampledAt))
    .limit(range.limit);
}

/** Keeps metrics history bounded: samples received before the cutoff are deleted. */
export async function pruneMetrics(db: Database, olderThan: Date): Promise<void> {
  await db.delete(metricsSamples).where(lte(metricsSamples.receivedAt, olderThan));
}
