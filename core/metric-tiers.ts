import { sql } from "drizzle-orm";
import type { Database } from "../db/client.js";
import type { Config } from "./config.js";
import { INTAKE_LIMITS } from "./heartbeat-intake.js";

/**
 * Metric history in three tiers: raw heartbeat samples for a short window,
 * one-minute and one-hour rollups (average, minimum, maximum per bucket) for
 * longer. Both rollups are computed from the raw samples by the
 * `metric-rollups` schedule, each bucket once it can no longer receive samples.
 */
export type MetricTier = "raw" | "minute" | "hour";

export interface MetricTierSettings {
  rawRetentionHours: number;
  minuteRetentionDays: number;
  hourRetentionDays: number;
}

/** The defaults of core/config.ts (METRICS_RETENTION_HOURS, METRICS_MINUTE_RETENTION_DAYS, METRICS_HOUR_RETENTION_DAYS). */
export const DEFAULT_METRIC_TIERS: MetricTierSettings = { rawRetentionHours: 6, minuteRetentionDays: 7, hourRetentionDays: 365 };

export function metricTierSettings(
  config: Pick<Config, "METRICS_RETENTION_HOURS" | "METRICS_MINUTE_RETENTION_DAYS" | "METRICS_HOUR_RETENTION_DAYS">,
): MetricTierSettings {
  return {
    rawRetentionHours: config.METRICS_RETENTION_HOURS,
    minuteRetentionDays: config.METRICS_MINUTE_RETENTION_DAYS,
    hourRetentionDays: config.METRICS_HOUR_RETENTION_DAYS,
  };
}

export const TIER_SECONDS: Record<MetricTier, number> = { raw: 0, minute: 60, hour: 3600 };

/**
 * A bucket is rolled up once no sample can still land in it: sample times are
 * within the intake's tolerance of the database clock (else replaced by it),
 * plus a minute for batches in flight.
 */
export const ROLLUP_SETTLE_SECONDS = INTAKE_LIMITS.maxSampleSkewMs / 1000 + 60;

const order: MetricTier[] = ["raw", "minute", "hour"];
const coarser = (a: MetricTier, b: MetricTier): MetricTier => (order.indexOf(a) >= order.indexOf(b) ? a : b);

/**
 * The tier ListMetrics reads: the coarser of the tier the step asks for (a
 * step under a minute: raw; under an hour: minute; else hour; 0: the finest)
 * and the finest tier still holding the start of the range (no start: the
 * step alone decides, and the tier's whole history is read).
 */
export function chooseTier(settings: MetricTierSettings, fromMs: number | undefined, nowMs: number, stepSeconds: number): MetricTier {
  const byStep: MetricTier = stepSeconds >= 3600 ? "hour" : stepSeconds >= 60 ? "minute" : "raw";
  if (fromMs === undefined) return byStep;
  const age = nowMs - fromMs;
  const byRange: MetricTier =
    age <= settings.rawRetentionHours * 3600_000 ? "raw" : age <= settings.minuteRetentionDays * 86400_000 ? "minute" : "hour";
  return coarser(byStep, byRange);
}

/** The numeric fields of a Metrics message: proto JSON name, raw column, whether it is a uint64 (JSON string). */
const FIELDS = [
  ["cpuPercent", "cpu_percent", false],
  ["memoryUsedBytes", "memory_used_bytes", true],
  ["memoryTotalBytes", "memory_total_bytes", true],
  ["load1", "load1", false],
  ["load5", "load5", false],
  ["load15", "load15", false],
  ["uptimeSeconds", "uptime_seconds", true],
] as const;

/** A uint64's digits (never anything else: the rollup parses this text as JSON), kept as a JSON string so no reader rounds it. */
const digits = (value: string | undefined): string => (value !== undefined && /^[0-9]{1,20}$/.test(value) ? value : "0");

/** A raw row's column values from a heartbeat's metrics (proto JSON, zero fields omitted). */
export function rawSampleValues(metrics: Record<string, unknown>): { numbers: string[]; disks: string } {
  const numbers = FIELDS.map(([name]) => String(metrics[name] ?? 0));
  // Byte counts go in as the digits the intake checked (uint64 JSON strings), so none is rounded through a double.
  const disks = ((metrics.disks as { mount?: string; usedBytes?: string; totalBytes?: string }[] | undefined) ?? []).map(
    (d) => `[${JSON.stringify(d.mount ?? "")},"${digits(d.usedBytes)}","${digits(d.totalBytes)}"]`,
  );
  return { numbers, disks: `[${disks.join(",")}]` };
}

/** The raw table's numeric columns, in the order of `rawSampleValues().numbers`. */
export const RAW_NUMERIC_COLUMNS = FIELDS.map(([, column, isInteger]) => ({ column, type: isInteger ? "int8" : "float8" }));

const rowsOf = <T>(result: unknown): T[] => (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];

/** A Metrics JSON object from SQL expressions per field (`expr(column, isInteger)`) and a disks expression. */
function metricsJson(expr: (column: string, isInteger: boolean) => string, disks: string): string {
  const parts = FIELDS.map(
    ([name, column, isInteger]) => `'${name}', ${isInteger ? `(${expr(column, true)})::text` : expr(column, false)}`,
  );
  return `jsonb_build_object(${parts.join(", ")}, 'disks', ${disks})`;
}

/**
 * Rolls up every bucket of one tier that has settled since the last one rolled
 * up (the tier's newest bucket), from the raw samples of live servers. One
 * statement; recomputing a bucket gives the same row (upsert), so a retried run
 * is harmless. Returns the number of buckets written.
 */
async function rollUpTier(db: Database, tier: "minute" | "hour"): Promise<number> {
  const seconds = TIER_SECONDS[tier];
  const avg = metricsJson((c, i) => (i ? `round(avg(s.${c}))::int8` : `avg(s.${c})`), "coalesce(d.avg, '[]'::jsonb)");
  const min = metricsJson((c) => `min(s.${c})`, "coalesce(d.min, '[]'::jsonb)");
  const max = metricsJson((c) => `max(s.${c})`, "coalesce(d.max, '[]'::jsonb)");
  const disk = (kind: "avg" | "min" | "max") =>
    `jsonb_agg(jsonb_build_object('mount', mount, 'usedBytes', round(${kind}_used)::int8::text, 'totalBytes', round(${kind}_total)::int8::text) order by mount) as ${kind}`;
  const result = await db.execute(sql`
    with bounds as (
      select coalesce(
          (select max(bucket) + make_interval(secs => ${seconds}) from metric_rollups where resolution_seconds = ${seconds}),
          (select date_trunc(${tier}, min(sampled_at)) from metric_samples_raw)) as from_at,
        date_trunc(${tier}, now() - make_interval(secs => ${ROLLUP_SETTLE_SECONDS})) as to_at
    ),
    s as (
      select r.*, date_trunc(${tier}, r.sampled_at) as bucket
      from metric_samples_raw r, bounds b
      where r.sampled_at >= b.from_at and r.sampled_at < b.to_at and exists (select 1 from servers where id = r.server_id)
    ),
    mounts as (
      select s.server_id, s.bucket, e ->> 0 as mount, (e ->> 1)::numeric as used, (e ->> 2)::numeric as total
      from s, jsonb_array_elements(s.disks::jsonb) e
    ),
    d as (
      select server_id, bucket, ${sql.raw(disk("avg"))}, ${sql.raw(disk("min"))}, ${sql.raw(disk("max"))}
      from (select server_id, bucket, mount, avg(used) as avg_used, min(used) as min_used, max(used) as max_used,
              avg(total) as avg_total, min(total) as min_total, max(total) as max_total
            from mounts group by server_id, bucket, mount) m
      group by server_id, bucket
    ),
    written as (
      insert into metric_rollups (server_id, resolution_seconds, bucket, samples, avg, min, max)
      select s.server_id, ${seconds}::int, s.bucket, count(*)::int, ${sql.raw(avg)}, ${sql.raw(min)}, ${sql.raw(max)}
      from s left join d on d.server_id = s.server_id and d.bucket = s.bucket
      group by s.server_id, s.bucket, d.avg, d.min, d.max
      on conflict (server_id, resolution_seconds, bucket) do update
        set samples = excluded.samples, avg = excluded.avg, min = excluded.min, max = excluded.max
      returning 1
    )
    select count(*)::int as n from written`);
  return Number(rowsOf<{ n: number }>(result)[0]?.n ?? 0);
}

export interface RollupResult {
  minuteBuckets: number;
  hourBuckets: number;
  pruned: { raw: number; minute: number; hour: number };
}

/** Deletes each tier's rows past its retention; returns how many per tier. */
export async function pruneMetricTiers(db: Database, settings: MetricTierSettings): Promise<RollupResult["pruned"]> {
  const prune = async (statement: ReturnType<typeof sql>) =>
    Number(rowsOf<{ n: number }>(await db.execute(sql`with d as (${statement} returning 1) select count(*)::int as n from d`))[0]?.n ?? 0);
  const rollups = (seconds: number, days: number) =>
    prune(sql`delete from metric_rollups where resolution_seconds = ${seconds} and bucket < now() - make_interval(days => ${days})`);
  return {
    raw: await pruneRawSamples(db, settings.rawRetentionHours),
    minute: await rollups(60, settings.minuteRetentionDays),
    hour: await rollups(3600, settings.hourRetentionDays),
  };
}

/** Raw samples taken more than `hours` ago, by the database's clock. */
export async function pruneRawSamples(db: Database, hours: number): Promise<number> {
  const result = await db.execute(sql`
    with d as (delete from metric_samples_raw where sampled_at < now() - make_interval(hours => ${hours}) returning 1)
    select count(*)::int as n from d`);
  return Number(rowsOf<{ n: number }>(result)[0]?.n ?? 0);
}

/** The scheduled pass: roll up what has settled (minutes first, hours from the same raw samples), then prune every tier. */
export async function rollUpMetrics(db: Database, settings: MetricTierSettings): Promise<RollupResult> {
  const minuteBuckets = await rollUpTier(db, "minute");
  const hourBuckets = await rollUpTier(db, "hour");
  return { minuteBuckets, hourBuckets, pruned: await pruneMetricTiers(db, settings) };
}

export interface MetricPoint {
  time: Date;
  samples: number;
  avg: Record<string, unknown>;
  min: Record<string, unknown>;
  max: Record<string, unknown>;
}

interface RawRow {
  sampled_at: Date | string;
  disks: string;
  [column: string]: unknown;
}

function rawMetrics(row: RawRow): Record<string, unknown> {
  const metrics: Record<string, unknown> = {};
  for (const [name, column, isInteger] of FIELDS) metrics[name] = isInteger ? String(row[column]) : Number(row[column]);
  metrics.disks = (JSON.parse(row.disks) as [string, string, string][]).map(([mount, usedBytes, totalBytes]) => ({
    mount,
    usedBytes,
    totalBytes,
  }));
  return metrics;
}

/** A server's metric history over [from, to], oldest first, from the tier `chooseTier` picks. */
export async function listMetricHistory(
  db: Database,
  settings: MetricTierSettings,
  serverId: string,
  query: { from?: Date; to?: Date; stepSeconds: number; limit: number },
): Promise<{ tier: MetricTier; points: MetricPoint[] }> {
  const [clock] = rowsOf<{ now: Date | string }>(await db.execute(sql`select now() as now`));
  const nowMs = new Date(clock?.now ?? Date.now()).getTime();
  const tier = chooseTier(settings, query.from?.getTime(), nowMs, query.stepSeconds);
  const from = query.from?.toISOString() ?? null;
  const to = query.to?.toISOString() ?? null;
  if (tier === "raw") {
    const rows = rowsOf<RawRow>(
      await db.execute(sql`
        select * from metric_samples_raw
        where server_id = ${serverId}
          and (${from}::timestamptz is null or sampled_at >= ${from}::timestamptz)
          and (${to}::timestamptz is null or sampled_at <= ${to}::timestamptz)
        order by sampled_at limit ${query.limit}`),
    );
    return {
      tier,
      points: rows.map((row) => {
        const metrics = rawMetrics(row);
        return { time: new Date(row.sampled_at), samples: 1, avg: metrics, min: metrics, max: metrics };
      }),
    };
  }
  const rows = rowsOf<{ bucket: Date | string; samples: number; avg: unknown; min: unknown; max: unknown }>(
    await db.execute(sql`
      select bucket, samples, avg, min, max from metric_rollups
      where server_id = ${serverId} and resolution_seconds = ${TIER_SECONDS[tier]}
        and (${from}::timestamptz is null or bucket >= date_trunc(${tier}, ${from}::timestamptz))
        and (${to}::timestamptz is null or bucket <= ${to}::timestamptz)
      order by bucket limit ${query.limit}`),
  );
  const json = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : v) as Record<string, unknown>;
  return {
    tier,
    points: rows.map((r) => ({
      time: new Date(r.bucket),
      samples: Number(r.samples),
      avg: json(r.avg),
      min: json(r.min),
      max: json(r.max),
    })),
  };
}
