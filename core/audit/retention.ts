import { sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";

/** Entries removed per statement, so a large backlog never holds one long transaction. */
const BATCH = 5000;

const rowsOf = <T>(result: unknown): T[] => (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];

/**
 * The one delete path of the audit trail: each chain's oldest entries recorded before `before`
 * are removed, and the chain's checkpoint moves to the last removed entry (its sequence and hash)
 * in the same statement, under the chain head's row lock, so verification starts from there.
 * Returns the number of entries removed.
 */
export async function pruneAuditEvents(db: Database, before: Date): Promise<number> {
  let removed = 0;
  for (;;) {
    const rows = rowsOf<{ n: number }>(
      await db.execute(sql`
        with cut as (
          select c.owner_id, (
            select e.seq from audit_events e
            where e.owner_id = c.owner_id and e.seq > c.checkpoint_seq and e.seq <= c.checkpoint_seq + ${BATCH}
              and e.at < ${before.toISOString()}::timestamptz
            order by e.seq desc limit 1
          ) as seq
          from audit_chains c
          for update
        ), moved as (
          update audit_chains c set checkpoint_seq = cut.seq, checkpoint_hash = e.hash
          from cut join audit_events e on e.owner_id = cut.owner_id and e.seq = cut.seq
          where c.owner_id = cut.owner_id
          returning c.owner_id, c.checkpoint_seq
        ), gone as (
          delete from audit_events e using moved
          where e.owner_id = moved.owner_id and e.seq <= moved.checkpoint_seq
          returning 1
        )
        select count(*)::int as n from gone`),
    );
    const n = Number(rows[0]?.n ?? 0);
    removed += n;
    if (n === 0) return removed;
  }
}
