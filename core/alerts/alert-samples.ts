import { sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";

/** Disk and memory usage of one server over a window of raw heartbeat samples, in percent. */
export interface UsageWindow {
  serverId: string;
  samples: number;
  /** Seconds between the window's oldest and newest sample. */
  spanSeconds: number;
  diskMin: number | null;
  diskMax: number | null;
  memoryMin: number | null;
  memoryMax: number | null;
}

/**
 * Reads the raw heartbeat samples (`metric_samples_raw`, disks as `[[mount, used, total], …]`) of the last `windowSeconds` for the given
 * servers: per sample the fullest mount's used/total and memory used/total, then their min and max
 * over the window. The one place the alert evaluation reads samples from.
 */
export async function usageOverWindow(db: Pick<Database, "execute">, serverIds: string[], windowSeconds: number): Promise<UsageWindow[]> {
  if (serverIds.length === 0) return [];
  const result = await db.execute(sql`
    with s as (
      select m.server_id, m.sampled_at,
        (select max((d ->> 1)::numeric / nullif((d ->> 2)::numeric, 0)) from jsonb_array_elements(m.disks::jsonb) d) * 100 as disk,
        m.memory_used_bytes::numeric / nullif(m.memory_total_bytes::numeric, 0) * 100 as memory
      from metric_samples_raw m
      where m.server_id = any(${sql`array[${sql.join(
        serverIds.map((id) => sql`${id}`),
        sql`, `,
      )}]::uuid[]`}) and m.sampled_at >= now() - make_interval(secs => ${windowSeconds})
    )
    select server_id::text as server_id, count(*)::int as samples,
      extract(epoch from max(sampled_at) - min(sampled_at))::float8 as span_seconds,
      min(disk)::float8 as disk_min, max(disk)::float8 as disk_max,
      min(memory)::float8 as memory_min, max(memory)::float8 as memory_max
    from s group by server_id`);
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as Record<string, unknown>[];
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return rows.map((r) => ({
    serverId: String(r.server_id),
    samples: Number(r.samples),
    spanSeconds: Number(r.span_seconds ?? 0),
    diskMin: num(r.disk_min),
    diskMax: num(r.disk_max),
    memoryMin: num(r.memory_min),
    memoryMax: num(r.memory_max),
  }));
}
