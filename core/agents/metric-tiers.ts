import { sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import type { Config } from "../kernel/config.js";
import { sqlState } from "../kernel/db-errors.js";
import { errorSummary, log } from "../kernel/log.js";
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

/** The defaults of core/kernel/config.ts (METRICS_RETENTION_HOURS, METRICS_MINUTE_RETENTION_DAYS, METRICS_HOUR_RETENTION_DAYS). */
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

/**
 * What one stored bucket and one ListMetrics sample keep of an agent's mounts:
 * at most `maxMounts` distinct mounts with names of at most `maxMountLength`
 * characters; the rest are counted (`omittedDisks`), not stored. A bucket keeps
 * the mounts seen in most of its samples (an agent's real disks, not churn),
 * then the largest. Raw samples are bounded by the intake (its mount limits and
 * the 64 KiB body) and keep every mount: the disk alerts read them.
 */
export const KEPT_DISKS = { maxMounts: 32, maxMountLength: 256 } as const;

/** Servers rolled up per statement; a statement that fails is split until only the servers whose samples fail it are left out. */
const ROLLUP_CHUNK = 500;

/** A Metrics JSON object from SQL expressions per field (`expr(column, isInteger)`), a disks expression and an omitted-disks count. */
function metricsJson(expr: (column: string, isInteger: boolean) => string, disks: string, omitted: string): string {
  const parts = FIELDS.map(
    ([name, column, isInteger]) => `'${name}', ${isInteger ? `(${expr(column, true)})::text` : expr(column, false)}`,
  );
  return `jsonb_build_object(${parts.join(", ")}, 'disks', ${disks}, 'omittedDisks', ${omitted})`;
}

/** The settled range of a tier not yet rolled up, as epoch seconds (whole minutes or hours), by the database's clock. */
async function pendingRange(db: Database, tier: "minute" | "hour"): Promise<{ from: number; to: number } | undefined> {
  const seconds = TIER_SECONDS[tier];
  const [bounds] = rowsOf<{ from_at: number | string | null; to_at: number | string }>(
    await db.execute(sql`
      select extract(epoch from coalesce(
          (select max(bucket) + make_interval(secs => ${seconds}) from metric_rollups where resolution_seconds = ${seconds}),
          (select date_trunc(${tier}, min(sampled_at)) from metric_samples_raw)))::float8 as from_at,
        extract(epoch from date_trunc(${tier}, now() - make_interval(secs => ${ROLLUP_SETTLE_SECONDS})))::float8 as to_at`),
  );
  if (bounds?.from_at === null || bounds?.from_at === undefined) return undefined;
  const range = { from: Number(bounds.from_at), to: Number(bounds.to_at) };
  return range.from < range.to ? range : undefined;
}

/** The live servers with raw samples in the range. */
async function serversWithSamples(db: Database, range: { from: number; to: number }): Promise<string[]> {
  const rows = rowsOf<{ id: string }>(
    await db.execute(sql`
      select distinct r.server_id::text as id from metric_samples_raw r
      where r.sampled_at >= to_timestamp(${range.from}) and r.sampled_at < to_timestamp(${range.to})
        and exists (select 1 from servers where id = r.server_id)
      order by 1`),
  );
  return rows.map((r) => r.id);
}

/**
 * Rolls up the buckets of the range for the given servers, in one statement.
 * Per server and bucket the mounts are ranked and at most KEPT_DISKS are kept,
 * so no aggregate grows with what an agent sends. Recomputing a bucket gives
 * the same row (upsert), so a retried run is harmless.
 */
async function rollUpServers(db: Database, tier: "minute" | "hour", range: { from: number; to: number }, ids: string[]): Promise<number> {
  const seconds = TIER_SECONDS[tier];
  const { maxMounts, maxMountLength } = KEPT_DISKS;
  const omitted = "coalesce(d.omitted, 0)";
  const avg = metricsJson((c, i) => (i ? `round(avg(s.${c}))::int8` : `avg(s.${c})`), "coalesce(d.avg, '[]'::jsonb)", omitted);
  const min = metricsJson((c) => `min(s.${c})`, "coalesce(d.min, '[]'::jsonb)", omitted);
  const max = metricsJson((c) => `max(s.${c})`, "coalesce(d.max, '[]'::jsonb)", omitted);
  const disk = (kind: "avg" | "min" | "max") =>
    `jsonb_agg(jsonb_build_object('mount', mount, 'usedBytes', round(${kind}_used)::int8::text, 'totalBytes', round(${kind}_total)::int8::text) order by mount) filter (where kept) as ${kind}`;
  const statement = sql`
    with s as (
      select r.*, date_trunc(${tier}, r.sampled_at) as bucket
      from metric_samples_raw r
      where r.server_id = any(${`{${ids.join(",")}}`}::uuid[])
        and r.sampled_at >= to_timestamp(${range.from}) and r.sampled_at < to_timestamp(${range.to})
        and exists (select 1 from servers where id = r.server_id)
    ),
    mounts as (
      select s.server_id, s.bucket, e ->> 0 as mount, (e ->> 1)::numeric as used, (e ->> 2)::numeric as total
      from s, jsonb_array_elements(s.disks::jsonb) e
    ),
    ranked as (
      select server_id, bucket, mount, avg(used) as avg_used, min(used) as min_used, max(used) as max_used,
        avg(total) as avg_total, min(total) as min_total, max(total) as max_total,
        coalesce(length(mount) <= ${maxMountLength}, false) as fits,
        row_number() over (partition by server_id, bucket
          order by coalesce(length(mount) <= ${maxMountLength}, false) desc, count(*) desc, max(total) desc nulls last, mount) as rank
      from mounts group by server_id, bucket, mount
    ),
    d as (
      select server_id, bucket, ${sql.raw(disk("avg"))}, ${sql.raw(disk("min"))}, ${sql.raw(disk("max"))},
        count(*) filter (where not kept)::int as omitted
      from (select *, fits and rank <= ${maxMounts} as kept from ranked) m
      group by server_id, bucket
    ),
    written as (
      insert into metric_rollups (server_id, resolution_seconds, bucket, samples, avg, min, max)
      select s.server_id, ${seconds}::int, s.bucket, count(*)::int, ${sql.raw(avg)}, ${sql.raw(min)}, ${sql.raw(max)}
      from s left join d on d.server_id = s.server_id and d.bucket = s.bucket
      group by s.server_id, s.bucket, d.avg, d.min, d.max, d.omitted
      on conflict (server_id, resolution_seconds, bucket) do update
        set samples = excluded.samples, avg = excluded.avg, min = excluded.min, max = excluded.max
      returning 1
    )
    select count(*)::int as n from written`;
  // The planner guesses 100 mounts per sample, so its cost passes JIT's threshold and each statement spent seconds compiling.
  const result = await db.transaction(async (tx) => {
    await tx.execute(sql`set local jit = off`);
    await tx.execute(sql`set local work_mem = '64MB'`);
    return tx.execute(statement);
  });
  return Number(rowsOf<{ n: number }>(result)[0]?.n ?? 0);
}

/**
 * A failure caused by what some server's samples hold (a data exception, a
 * value past a limit such as jsonb's 256 MB, memory for one statement), not by
 * the database being unavailable: worth splitting the servers to find it.
 */
const isServerDataError = (error: unknown): boolean => /^(2[23]|54|53200)/.test(sqlState(error) ?? "");

interface TierRollup {
  buckets: number;
  failedServers: number;
}

/** Rolls up `ids`, halving on a failure caused by the samples, so a server that fails is left out alone. */
async function rollUpIsolated(
  db: Database,
  tier: "minute" | "hour",
  range: { from: number; to: number },
  ids: string[],
): Promise<TierRollup> {
  try {
    return { buckets: await rollUpServers(db, tier, range, ids), failedServers: 0 };
  } catch (error) {
    if (!isServerDataError(error)) throw error;
    if (ids.length === 1) {
      log.warn("metric rollup of one server failed: its buckets of the range are skipped", {
        serverId: ids[0],
        tier,
        ...errorSummary(error),
      });
      return { buckets: 0, failedServers: 1 };
    }
  }
  const half = Math.ceil(ids.length / 2);
  const first = await rollUpIsolated(db, tier, range, ids.slice(0, half));
  const second = await rollUpIsolated(db, tier, range, ids.slice(half));
  return { buckets: first.buckets + second.buckets, failedServers: first.failedServers + second.failedServers };
}

/**
 * Rolls up every bucket of one tier that has settled since the last one rolled
 * up (the tier's newest bucket), from the raw samples of live servers, in
 * chunks of servers over one range fixed up front.
 */
async function rollUpTier(db: Database, tier: "minute" | "hour"): Promise<TierRollup> {
  const range = await pendingRange(db, tier);
  const total: TierRollup = { buckets: 0, failedServers: 0 };
  if (!range) return total;
  const ids = await serversWithSamples(db, range);
  for (let i = 0; i < ids.length; i += ROLLUP_CHUNK) {
    const chunk = await rollUpIsolated(db, tier, range, ids.slice(i, i + ROLLUP_CHUNK));
    total.buckets += chunk.buckets;
    total.failedServers += chunk.failedServers;
  }
  return total;
}

export interface RollupResult {
  minuteBuckets: number;
  hourBuckets: number;
  /** Servers whose samples failed a tier's rollup (logged; their buckets of that run are skipped). */
  failedServers: number;
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

/**
 * The scheduled pass: roll up what has settled (minutes first, hours from the
 * same raw samples), then prune every tier. Pruning runs even when a rollup
 * failed (the failure is thrown after it), so no tier outgrows its retention.
 */
export async function rollUpMetrics(db: Database, settings: MetricTierSettings): Promise<RollupResult> {
  const settle = (run: Promise<TierRollup>) =>
    run.then(
      (rollup) => ({ rollup, error: undefined }),
      (error: unknown) => ({ rollup: { buckets: 0, failedServers: 0 }, error }),
    );
  const minute = await settle(rollUpTier(db, "minute"));
  const hour = await settle(rollUpTier(db, "hour"));
  const pruned = await pruneMetricTiers(db, settings);
  const failure = minute.error ?? hour.error;
  if (failure) throw failure;
  return {
    minuteBuckets: minute.rollup.buckets,
    hourBuckets: hour.rollup.buckets,
    failedServers: minute.rollup.failedServers + hour.rollup.failedServers,
    pruned,
  };
}

export interface MetricPoint {
  time: Date;
  samples: number;
  avg: Record<string, unknown>;
  min: Record<string, unknown>;
  max: Record<string, unknown>;
}

/** What one ListMetrics answer holds at most of its samples' JSON (the numbers counted at 200 bytes a set): a few MB whatever the rows hold. */
export const LIST_BYTES_BUDGET = 4 * 1024 * 1024;

const { maxMounts, maxMountLength } = KEPT_DISKS;
const fits = (name: string) => `coalesce(length(${name}) <= ${maxMountLength}, false)`;

/** A raw row's disks (`[[mount, used, total], …]`) as kept for an answer: `disks` (jsonb text) and `omitted`. */
const keptRawDisks = `
  select coalesce(jsonb_agg(e order by i) filter (where kept), '[]'::jsonb)::text as disks, count(*) filter (where not kept)::int as omitted
  from (select e, i, ${fits("e ->> 0")} and row_number() over (order by ${fits("e ->> 0")} desc, i) <= ${maxMounts} as kept
        from jsonb_array_elements(p.disks::jsonb) with ordinality as x(e, i)) m`;

/** A rollup row's Metrics set as kept for an answer: rows written before the mounts were bounded may hold thousands. */
const keptSet = (set: string) => `(
  select (${set} - 'disks') || jsonb_build_object(
      'disks', coalesce(jsonb_agg(e order by i) filter (where kept), '[]'::jsonb),
      'omittedDisks', coalesce((${set} ->> 'omittedDisks')::int8, 0) + count(*) filter (where not kept))
  from (select e, i, ${fits("e ->> 'mount'")} and row_number() over (order by ${fits("e ->> 'mount'")} desc, i) <= ${maxMounts} as kept
        from jsonb_array_elements(case when jsonb_typeof(${set} -> 'disks') = 'array' then ${set} -> 'disks' else '[]'::jsonb end)
          with ordinality as x(e, i)) m)`;

interface RawRow {
  sampled_at: Date | string;
  disks: string;
  omitted: number;
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
  metrics.omittedDisks = Number(row.omitted);
  return metrics;
}

/**
 * A server's metric history over [from, to], oldest first, from the tier
 * `chooseTier` picks: at most `limit` samples and LIST_BYTES_BUDGET of them
 * (always the first), each with at most KEPT_DISKS mounts. Trimmed and sized in
 * the database, so a row of any size never reaches the API whole; `truncated`
 * says more samples lie in the range.
 */
export async function listMetricHistory(
  db: Database,
  settings: MetricTierSettings,
  serverId: string,
  query: { from?: Date; to?: Date; stepSeconds: number; limit: number },
): Promise<{ tier: MetricTier; points: MetricPoint[]; truncated: boolean }> {
  const [clock] = rowsOf<{ now: Date | string }>(await db.execute(sql`select now() as now`));
  const nowMs = new Date(clock?.now ?? Date.now()).getTime();
  const tier = chooseTier(settings, query.from?.getTime(), nowMs, query.stepSeconds);
  const from = query.from?.toISOString() ?? null;
  const to = query.to?.toISOString() ?? null;
  const moreInRange = (rows: { n: number | string; fetched: number | string }[]) =>
    rows.length > 0 && Number(rows[0]?.fetched) > rows.length;
  if (tier === "raw") {
    const rows = rowsOf<RawRow & { n: number; fetched: number }>(
      await db.execute(sql`
        with page as (
          select * from metric_samples_raw
          where server_id = ${serverId}
            and (${from}::timestamptz is null or sampled_at >= ${from}::timestamptz)
            and (${to}::timestamptz is null or sampled_at <= ${to}::timestamptz)
          order by sampled_at limit ${query.limit + 1}
        ),
        sized as (
          select p.sampled_at, ${sql.raw(RAW_NUMERIC_COLUMNS.map((c) => `p.${c.column}`).join(", "))}, k.disks, k.omitted, row_number() over w as n,
            sum(3 * (octet_length(k.disks) + 200)) over w as bytes, count(*) over () as fetched
          from page p cross join lateral (${sql.raw(keptRawDisks)}) k
          window w as (order by p.sampled_at rows unbounded preceding)
        )
        select * from sized where n <= ${query.limit} and (n = 1 or bytes <= ${LIST_BYTES_BUDGET}) order by n`),
    );
    return {
      tier,
      truncated: moreInRange(rows),
      points: rows.map((row) => {
        const metrics = rawMetrics(row);
        return { time: new Date(row.sampled_at), samples: 1, avg: metrics, min: metrics, max: metrics };
      }),
    };
  }
  const rows = rowsOf<{
    bucket: Date | string;
    samples: number;
    avg: unknown;
    min: unknown;
    max: unknown;
    n: number;
    fetched: number;
  }>(
    await db.execute(sql`
      with page as (
        select bucket, samples, avg, min, max from metric_rollups
        where server_id = ${serverId} and resolution_seconds = ${TIER_SECONDS[tier]}
          and (${from}::timestamptz is null or bucket >= date_trunc(${tier}, ${from}::timestamptz))
          and (${to}::timestamptz is null or bucket <= ${to}::timestamptz)
        order by bucket limit ${query.limit + 1}
      ),
      kept as (
        select p.bucket, p.samples, ${sql.raw(keptSet("p.avg"))} as avg, ${sql.raw(keptSet("p.min"))} as min,
          ${sql.raw(keptSet("p.max"))} as max
        from page p
      ),
      sized as (
        select k.*, row_number() over w as n, count(*) over () as fetched,
          sum(octet_length(k.avg::text) + octet_length(k.min::text) + octet_length(k.max::text)) over w as bytes
        from kept k
        window w as (order by k.bucket rows unbounded preceding)
      )
      select bucket, samples, avg, min, max, n, fetched from sized
      where n <= ${query.limit} and (n = 1 or bytes <= ${LIST_BYTES_BUDGET}) order by n`),
  );
  const json = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : v) as Record<string, unknown>;
  return {
    tier,
    truncated: moreInRange(rows),
    points: rows.map((r) => ({
      time: new Date(r.bucket),
      samples: Number(r.samples),
      avg: json(r.avg),
      min: json(r.min),
      max: json(r.max),
    })),
  };
}
