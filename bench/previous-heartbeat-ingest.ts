/**
 * The heartbeat ingestor as it was before the metric tiers (commit e3626c8),
 * verbatim but for import paths and names, for bench/heartbeats.ts `--modes before`:
 * one JSON document per batch, samples as jsonb into `metrics_samples` (foreign
 * key, two btree indexes), which the benchmark creates with that commit's DDL.
 */
import { sql } from "drizzle-orm";
import type { HeartbeatRecord } from "../core/agents/heartbeat-intake.js";
import { sqlState } from "../core/kernel/db-errors.js";
import { AppError } from "../core/kernel/errors.js";
import { errorSummary, log } from "../core/kernel/log.js";
import type { Database } from "../db/client.js";

interface Pending extends HeartbeatRecord {
  receivedAt: Date;
  done: (error?: unknown) => void;
}

interface HeartbeatIngestor {
  /** Resolves once the heartbeat is in the database. */
  submit(heartbeat: HeartbeatRecord): Promise<void>;
  /** Authenticates, then submits (the intake of that time: no hold on progress while authenticating). */
  take(intake: () => Promise<HeartbeatRecord>): Promise<void>;
  /** The database's clock as of now, estimated from the last write (the local clock until the first one). */
  databaseNow(): number;
  stop(): Promise<void>;
}

/**
 * A write that failed because of what one heartbeat holds (data exceptions,
 * integrity violations such as a server deleted meanwhile), not because the
 * database is unavailable: worth splitting the batch to find it.
 */
const isDataError = (error: unknown): boolean => /^2[23]/.test(sqlState(error) ?? "") || error instanceof RangeError;

/**
 * Batches heartbeats: many heartbeats, one statement per table. Batching is
 * group commit: while one batch is being written, new heartbeats gather; when
 * the write ends they go out together. Under light load a heartbeat waits only
 * for the current event-loop turn; under heavy load batches grow (up to
 * `maxBatch`) instead of latency. Writes are serialized, so each flush can also
 * record how far this instance has caught up, which the liveness sweep uses to
 * never outrun ingestion.
 */
export function startPreviousHeartbeatIngestor(
  db: Database,
  options: { instanceId: string; maxBatch?: number; idleProgressMs?: number },
): HeartbeatIngestor {
  const maxBatch = options.maxBatch ?? 5000;
  let pending: Pending[] = [];
  let scheduled = false;
  let writing: Promise<void> | undefined;
  let stopped = false;

  /** Database clock minus local clock, measured at every write. */
  let clockOffsetMs = 0;

  /**
   * One statement (one round trip, atomic): latest state per server, every
   * sample, and (with `caughtUpTo`) how far this instance has caught up. A
   * sample time left undefined by the intake is the database's `now()`.
   */
  const write = async (batch: Pending[], caughtUpTo?: Date) => {
    const samples = JSON.stringify(
      batch.map((h) => ({
        server_id: h.serverId,
        sampled_at: h.sampledAt?.toISOString(),
        received_at: h.receivedAt.toISOString(),
        metrics: h.metrics,
      })),
    );
    const sentAt = Date.now();
    const result = await db.execute(sql`
      with v as (
        select server_id, coalesce(sampled_at, now()) as sampled_at, received_at, metrics from jsonb_to_recordset(${samples}::jsonb)
          as v(server_id uuid, sampled_at timestamptz, received_at timestamptz, metrics jsonb)
      ),
      latest as (select distinct on (server_id) server_id, received_at, metrics from v order by server_id, received_at desc),
      state as (
        update agents a set last_heartbeat_at = l.received_at, latest_metrics = l.metrics
        from latest l
        where a.server_id = l.server_id and (a.last_heartbeat_at is null or a.last_heartbeat_at < l.received_at)
      ),
      history as (
        insert into metrics_samples (server_id, sampled_at, received_at, metrics)
        select v.server_id, v.sampled_at, v.received_at, v.metrics from v
        where exists (select 1 from agents a where a.server_id = v.server_id)
      )${
        caughtUpTo
          ? sql`,
      progress as (
        insert into ingestion_progress (instance_id, caught_up_to, updated_at)
        values (${options.instanceId}, ${caughtUpTo.toISOString()}::timestamptz, now())
        on conflict (instance_id) do update set caught_up_to = excluded.caught_up_to, updated_at = now()
      )`
          : sql``
      }
      select (extract(epoch from now()) * 1000)::float8 as db_now`);
    const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as { db_now: number | string }[];
    const dbNow = Number(rows[0]?.db_now);
    // now() is the transaction's start: about when the statement left here.
    if (Number.isFinite(dbNow)) clockOffsetMs = dbNow - sentAt;
  };

  /**
   * Writes a batch; if the write fails because of what a heartbeat holds, the
   * batch is split in halves until every good heartbeat is written and only the
   * bad one fails. Progress is recorded only with the batch's last part, so it
   * never claims heartbeats still being retried.
   */
  const writeSplitting = async (batch: Pending[], caughtUpTo?: Date): Promise<void> => {
    try {
      await write(batch, caughtUpTo);
      for (const hb of batch) hb.done();
      return;
    } catch (error) {
      if (!isDataError(error)) {
        log.warn("heartbeat batch not written", { size: batch.length, ...errorSummary(error) });
        for (const hb of batch) hb.done(error);
        return;
      }
      if (batch.length <= 1) {
        log.warn("heartbeat not storable", { serverId: batch[0]?.serverId, ...errorSummary(error) });
        batch[0]?.done(AppError.invalid("metrics", "cannot be stored"));
        return;
      }
    }
    const half = Math.ceil(batch.length / 2);
    await writeSplitting(batch.slice(0, half));
    await writeSplitting(batch.slice(half), caughtUpTo);
  };

  /** Writes what is pending (at most `maxBatch` at a time), then keeps going while more has gathered. */
  const drain = async (): Promise<void> => {
    do {
      const batch = pending.slice(0, maxBatch);
      pending = pending.slice(batch.length);
      // Every heartbeat received before this instant is in this batch or an earlier one; later ones are still pending.
      const cutAt = pending.length > 0 ? (pending[0] as Pending).receivedAt : new Date();
      await writeSplitting(batch, cutAt);
    } while (pending.length > 0);
    // Cleared in the same turn as the last check, so no heartbeat can slip in unnoticed.
    writing = undefined;
  };
  const flush = () => {
    scheduled = false;
    writing ??= drain();
    return writing;
  };
  const schedule = () => {
    if (scheduled || writing) return;
    scheduled = true;
    setImmediate(() => void flush());
  };

  // With no heartbeats at all, progress still advances (nothing is pending).
  const idle = setInterval(() => {
    if (pending.length === 0 && !writing) void flush();
  }, options.idleProgressMs ?? 1000);

  return {
    submit(heartbeat) {
      if (stopped) return Promise.reject(new Error("heartbeat ingestion stopped"));
      return new Promise<void>((resolve, reject) => {
        pending.push({ ...heartbeat, receivedAt: new Date(), done: (error) => (error ? reject(error) : resolve()) });
        schedule();
      });
    },
    async take(intake) {
      await this.submit(await intake());
    },
    databaseNow: () => Date.now() + clockOffsetMs,
    async stop() {
      stopped = true;
      clearInterval(idle);
      await writing;
      await flush();
    },
  };
}
