import { sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { INGESTION_STALL_SECONDS } from "./liveness.js";

/** Database-wide readings for the metrics scrape: each one statement on an index or a small table. */

const rowsOf = <T>(result: unknown): T[] => (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as T[];

export async function serverCountsByStatus(db: Database): Promise<{ status: string; count: number }[]> {
  const rows = rowsOf<{ status: string; count: number | string }>(
    await db.execute(sql`select status, count(*)::int as count from servers group by status`),
  );
  return rows.map((r) => ({ status: r.status, count: Number(r.count) }));
}

/** Unpublished outbox events and the age of the oldest (the relay's lag), on the partial index of unpublished rows. */
export async function outboxBacklog(db: Database): Promise<{ events: number; oldestAgeSeconds: number }> {
  const [row] = rowsOf<{ events: number | string; age: number | string | null }>(
    await db.execute(sql`
      select count(*)::int as events, coalesce(extract(epoch from now() - min(created_at)), 0)::float8 as age
      from outbox_events where published_at is null`),
  );
  return { events: Number(row?.events ?? 0), oldestAgeSeconds: Number(row?.age ?? 0) };
}

/**
 * How far behind now heartbeat ingestion is known to be complete: the earliest
 * `caught_up_to` of the instances reporting (what the liveness sweep trusts).
 * Undefined when no instance reports.
 */
export async function ingestionBehindSeconds(db: Database): Promise<number | undefined> {
  const [row] = rowsOf<{ behind: number | string | null }>(
    await db.execute(sql`
      select extract(epoch from now() - min(caught_up_to))::float8 as behind from ingestion_progress
      where updated_at > now() - make_interval(secs => ${INGESTION_STALL_SECONDS})`),
  );
  return row?.behind === null || row?.behind === undefined ? undefined : Math.max(0, Number(row.behind));
}

/** Rollouts by status, and the servers of unfinished (running or paused) rollouts by their state in the rollout. */
export async function rolloutProgress(
  db: Database,
): Promise<{ rollouts: { status: string; count: number }[]; servers: { state: string; count: number }[] }> {
  const rollouts = rowsOf<{ status: string; count: number | string }>(
    await db.execute(sql`select status, count(*)::int as count from rollouts group by status`),
  );
  const servers = rowsOf<{ state: string; count: number | string }>(
    await db.execute(sql`
      select rs.state, count(*)::int as count from rollout_servers rs join rollouts r on r.id = rs.rollout_id
      where r.status in ('RUNNING', 'PAUSED') group by rs.state`),
  );
  return {
    rollouts: rollouts.map((r) => ({ status: r.status, count: Number(r.count) })),
    servers: servers.map((r) => ({ state: r.state, count: Number(r.count) })),
  };
}
