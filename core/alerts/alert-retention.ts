import { sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";

/**
 * Deletes alerts that ended (resolved, dropped, one-shot notices) longer ago than the retention,
 * with their deliveries (cascade), once none of those deliveries is still pending. Returns how many.
 */
export async function pruneEndedAlerts(db: Database, retentionHours: number): Promise<number> {
  const result = await db.execute(sql`
    with d as (
      delete from alerts a
      where a.id in (
        select id from alerts
        where state in ('resolved', 'dropped', 'notified')
          and coalesce(ended_at, fired_at, created_at) < now() - make_interval(hours => ${retentionHours})
        limit 5000)
        and not exists (select 1 from notification_deliveries n where n.alert_id = a.id and n.status = 'pending')
      returning 1)
    select count(*)::int as n from d`);
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as { n: number }[];
  return Number(rows[0]?.n ?? 0);
}
