import { eq, sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { agents, servers } from "../../db/schema.js";
import { enqueueServerEvent } from "../kernel/outbox.js";

export type AgentRow = typeof agents.$inferSelect;

/**
 * Registration: what the agent reports about its host, stored on its row, with
 * an `agent.registered` event in the same transaction. Times are the
 * database's: the install step that waits for this compares with its own
 * start, also taken from the database, never across two processes' clocks.
 */
export async function recordRegistration(db: Database, serverId: string, info: Record<string, unknown>): Promise<void> {
  await db.transaction(async (tx) => {
    const [row] = await tx
      .update(agents)
      // last_heartbeat_at keeps the clock of the heartbeat ingestion it is compared with (received_at, caught_up_to).
      .set({ info, registeredAt: sql`now()`, lastHeartbeatAt: new Date() })
      .where(eq(agents.serverId, serverId))
      .returning({ at: agents.registeredAt });
    await enqueueServerEvent(tx, serverId, "agent.registered", { serverId, ...info, at: row?.at?.toISOString() });
  });
}

/** The database's clock, as an ISO time: the mark a later `agentRegisteredSince` compares with. */
export async function databaseNow(db: Database): Promise<string> {
  const result = await db.execute(sql`select to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as now`);
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as { now: string }[];
  return rows[0]?.now as string;
}

/** Has the agent registered at or after `since` (a `databaseNow` mark)? Compared in the database. */
export async function agentRegisteredSince(db: Database, serverId: string, since: string): Promise<boolean> {
  const [row] = await db
    .select({ registered: sql<boolean>`${agents.registeredAt} >= ${since}::timestamptz` })
    .from(agents)
    .where(eq(agents.serverId, serverId));
  return row?.registered === true;
}

export async function getAgent(db: Database, serverId: string): Promise<AgentRow | undefined> {
  const [row] = await db.select().from(agents).where(eq(agents.serverId, serverId));
  return row;
}

/** Keeps the raw metrics tier bounded (the heartbeat monitor's retention pass; the rollup schedule prunes every tier). */
export async function pruneMetrics(db: Database, olderThan: Date): Promise<void> {
  await db.execute(sql`delete from metric_samples_raw where sampled_at <= ${olderThan.toISOString()}::timestamptz`);
}

/** What the agents of a cluster's servers last reported: host info and latest metrics (servers without an agent are left out). */
export async function clusterAgentReports(
  db: Database,
  clusterId: string,
): Promise<{ serverId: string; info: AgentRow["info"]; metrics: AgentRow["latestMetrics"] }[]> {
  return db
    .select({ serverId: servers.id, info: agents.info, metrics: agents.latestMetrics })
    .from(servers)
    .innerJoin(agents, eq(agents.serverId, servers.id))
    .where(eq(servers.clusterId, clusterId));
}
