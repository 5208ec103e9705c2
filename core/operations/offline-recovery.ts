import { sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";

export interface OfflineRecoveryCandidate {
  serverId: string;
  ownerId: string;
}

/**
 * OFFLINE servers that have had no recovery since they went OFFLINE and have no
 * operation running, oldest outage first, at most `maxRunning` minus the
 * recoveries running now: the bounded path of RECOVER_OFFLINE_SERVERS. A mass
 * outage starts recoveries N at a time, sweep after sweep, never the whole fleet.
 */
export async function offlineServersAwaitingRecovery(
  db: Database,
  maxRunning: number,
): Promise<{ candidates: OfflineRecoveryCandidate[]; waiting: number }> {
  const result = await db.execute(sql`
    with running as (select count(*)::int as n from operations where kind = 'recovery' and status = 'RUNNING'),
    awaiting as (
      select s.id, s.owner_id, s.status_changed_at from servers s
      where s.status = 'OFFLINE'
        and not exists (select 1 from operations o where o.server_id = s.id and o.status = 'RUNNING')
        and not exists (
          select 1 from operations o where o.server_id = s.id and o.kind = 'recovery' and o.started_at >= s.status_changed_at)
    ),
    picked as (
      select id, owner_id from awaiting order by status_changed_at, id
      limit greatest(0, ${maxRunning} - (select n from running))
    )
    select (select coalesce(json_agg(json_build_object('serverId', id, 'ownerId', owner_id)), '[]'::json) from picked) as picked,
      (select count(*) from awaiting)::int as awaiting`);
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as {
    picked: OfflineRecoveryCandidate[] | string;
    awaiting: number;
  }[];
  const picked = rows[0]?.picked ?? [];
  const candidates = typeof picked === "string" ? (JSON.parse(picked) as OfflineRecoveryCandidate[]) : picked;
  return { candidates, waiting: Number(rows[0]?.awaiting ?? 0) - candidates.length };
}
