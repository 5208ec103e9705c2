import { sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { heartbeatBatchWritten } from "../../observability/metrics.js";
import { sqlState } from "../kernel/db-errors.js";
import { AppError } from "../kernel/errors.js";
import { errorSummary, log } from "../kernel/log.js";
import { pgArray } from "../kernel/pg-array.js";
import type { HeartbeatRecord } from "./heartbeat-intake.js";
import { RAW_NUMERIC_COLUMNS, rawSampleValues } from "./metric-tiers.js";

export type { HeartbeatRecord } from "./heartbeat-intake.js";

interface Pending extends HeartbeatRecord {
  receivedAt: Date;
  done: (error?: unknown) => void;
}

export interface HeartbeatIngestor {
  /** Resolves once the heartbeat is in the database. */
  submit(heartbeat: HeartbeatRecord): Promise<void>;
  /**
   * Takes a heartbeat that just arrived: `intake` authenticates it (a database
   * lookup, which a stalled database holds up) and answers its record, which is
   * then submitted. Until `intake` ends, the progress this instance records stays
   * before the heartbeat's arrival: it was heard, just not yet written.
   */
  take(intake: () => Promise<HeartbeatRecord>): Promise<void>;
  /** The database's clock as of now, estimated from the last write (the local clock until the first one). */
  databaseNow(): number;
  /** Writes what is pending, then removes this instance's progress row (a stopped instance holds nothing back). */
  stop(): Promise<void>;
}

/**
 * A write that failed because of what one heartbeat holds (data exceptions,
 * integrity violations such as a server deleted meanwhile), not because the
 * database is unavailable: worth splitting the batch to find it.
 */
const isDataError = (error: unknown): boolean => /^2[23]/.test(sqlState(error) ?? "") || error instanceof RangeError;

/** A heartbeat still being taken in holds progress back at most this long: a request that never ends must not hold it forever. */
const ARRIVAL_HOLD_MS = 60_000;

/** The idle tick this much later than due means the process was frozen or its event loop blocked. */
const LOOP_GAP_MS = 2000;
/** After such a gap, progress stays before it this long: requests that waited in the sockets are read meanwhile. */
const RESUME_HOLD_MS = 2000;

/**
 * Records how far a heartbeat source other than the ingestor itself (the Kafka
 * topic) has caught up: every heartbeat it received before `caughtUpTo` is in
 * the database. Without `caughtUpTo` the row only shows the source is alive
 * (and still holds back the liveness sweep where it was). Never moves back.
 */
export async function recordIngestionProgress(db: Database, instanceId: string, caughtUpTo?: Date): Promise<void> {
  if (caughtUpTo) {
    await db.execute(sql`
      insert into ingestion_progress (instance_id, caught_up_to, updated_at)
      values (${instanceId}, ${caughtUpTo.toISOString()}::timestamptz, now())
      on conflict (instance_id) do update
        set caught_up_to = greatest(ingestion_progress.caught_up_to, excluded.caught_up_to), updated_at = now()`);
  } else {
    await db.execute(sql`update ingestion_progress set updated_at = now() where instance_id = ${instanceId}`);
  }
}

/** A column of a batch as one typed array parameter, unnested in a `rows from (...)`. */
const typedColumn = (type: string, items: readonly (string | undefined)[]) => sql`unnest(${pgArray(items)}::${sql.raw(type)}[])`;

/**
 * A column of JSON texts as one parameter, one text per line: JSON has no raw
 * newline, so nothing is quoted or escaped, neither here nor in PostgreSQL.
 */
const linesColumn = (texts: readonly string[]) => sql`unnest(string_to_array(${texts.join("\n")}, E'\n'))`;

/** A time as epoch seconds (milliseconds exact), which PostgreSQL reads cheaper than ISO text. */
const epochSeconds = (at: Date) => String(at.getTime() / 1000);

/**
 * Batches heartbeats: many heartbeats, one statement per table. Batching is
 * group commit: while one batch is being written, new heartbeats gather; when
 * the write ends they go out together. Under light load a heartbeat waits only
 * for the current event-loop turn; under heavy load batches grow (up to
 * `maxBatch`) instead of latency. Writes are serialized, so each flush can also
 * record how far this instance has caught up, which the liveness sweep uses to
 * never outrun ingestion.
 */
export function startHeartbeatIngestor(
  db: Database,
  options: { instanceId: string; maxBatch?: number; idleProgressMs?: number },
): HeartbeatIngestor {
  const maxBatch = options.maxBatch ?? 5000;
  let pending: Pending[] = [];
  /** Arrival times of the heartbeats being taken in (in arrival order: the first is the oldest). */
  const arriving = new Set<{ at: Date }>();
  let scheduled = false;
  let writing: Promise<void> | undefined;
  let stopped = false;

  /** Database clock minus local clock, measured at every write. */
  let clockOffsetMs = 0;

  const idleMs = options.idleProgressMs ?? 1000;
  /**
   * A frozen process (SIGSTOP, a paused VM) or a blocked event loop has requests waiting in its sockets that
   * no code has seen: not even `take` knows they arrived. When the loop turns again, which is noticed here
   * before a cut is made, progress stays at the last turn before the gap until those requests had time to be
   * read.
   */
  let loopSeenAt = Date.now();
  let resumed: { before: Date; until: number } | undefined;
  const heldByLoopGap = (): Date | undefined => {
    const now = Date.now();
    if (now - loopSeenAt > idleMs + LOOP_GAP_MS) resumed = { before: new Date(loopSeenAt), until: now + RESUME_HOLD_MS };
    loopSeenAt = now;
    if (resumed && now < resumed.until) return resumed.before;
    resumed = undefined;
    return undefined;
  };

  /**
   * One statement (one round trip, atomic): latest state per server, every
   * sample, and (with `caughtUpTo`) how far this instance has caught up. A
   * sample time left undefined by the intake is the database's `now()`.
   *
   * What PostgreSQL spends per heartbeat is kept small: each column goes in as
   * one parameter (a typed array, or JSON texts one per line, which need no
   * quoting; times as epoch seconds, read cheaper than ISO text); the latest
   * metrics are stored as the JSON text they came as, never parsed; only each
   * server's newest heartbeat of the batch (the last: receipt times never
   * decrease along a batch) updates its agent row, found by primary key
   * (`= any(array(...))`: a join alone is planned as a scan of every agent);
   * the samples are inserted straight from their arrays.
   */
  const write = async (batch: Pending[], caughtUpTo?: Date) => {
    const newestIndex = new Map<string, number>();
    for (const [i, h] of batch.entries()) newestIndex.set(h.serverId, i);
    const newest = batch.filter((h, i) => newestIndex.get(h.serverId) === i);
    const values = batch.map((h) => rawSampleValues(h.metrics));
    const latestIds = newest.map((h) => h.serverId);
    const sampleIds = batch.map((h) => h.serverId);
    const sampledAt = batch.map((h) => h.sampledAt && epochSeconds(h.sampledAt));
    const numbers = RAW_NUMERIC_COLUMNS.map(({ type }, i) =>
      typedColumn(
        type,
        values.map((v) => v.numbers[i]),
      ),
    );
    const columns = sql.raw(RAW_NUMERIC_COLUMNS.map((c) => c.column).join(", "));
    const sentAt = Date.now();
    // A server counts as heard when the database takes its heartbeat (the statement's now()), which is when the agent
    // gets its answer, not when the heartbeat came in: an agent sends its next heartbeat only after that answer, so the
    // time a write waited on a stalled database is not the agent's silence. The batch's progress below was cut before
    // the statement was sent, so it never claims past this instant.
    const heardAt = sql`now()`;
    const result = await db.execute(sql`
      with latest as (
        select * from rows from (
          ${typedColumn("uuid", latestIds)}, ${linesColumn(newest.map((h) => JSON.stringify(h.metrics)))}
        ) as l(server_id, metrics)
      ),
      state as (
        update agents a set last_heartbeat_at = ${heardAt}, latest_metrics = l.metrics
        from latest l
        where a.server_id = any(array(select server_id from latest)) and a.server_id = l.server_id
          and (a.last_heartbeat_at is null or a.last_heartbeat_at < ${heardAt})
      ),
      history as (
        insert into metric_samples_raw (server_id, sampled_at, ${columns}, disks)
        select server_id, coalesce(to_timestamp(sampled_at), now()), ${columns}, disks
        from rows from (
          ${typedColumn("uuid", sampleIds)}, ${typedColumn("float8", sampledAt)}, ${sql.join(numbers, sql`, `)},
          ${linesColumn(values.map((v) => v.disks))}
        ) as v(server_id, sampled_at, ${columns}, disks)
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
      heartbeatBatchWritten(batch.length, batch[0]?.receivedAt);
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

  /** The instant before which every heartbeat that reached this instance is written once what is now pending is. */
  const progressCut = (): Date => {
    let cut = pending.length > 0 ? (pending[0] as Pending).receivedAt : new Date();
    // The oldest arrival still within its hold (the set keeps arrival order).
    for (const arrival of arriving) {
      if (Date.now() - arrival.at.getTime() > ARRIVAL_HOLD_MS) continue;
      if (arrival.at < cut) cut = arrival.at;
      break;
    }
    const held = heldByLoopGap();
    return held && held < cut ? held : cut;
  };

  /** Writes what is pending (at most `maxBatch` at a time), then keeps going while more has gathered. */
  const drain = async (): Promise<void> => {
    do {
      const batch = pending.slice(0, maxBatch);
      pending = pending.slice(batch.length);
      // Every heartbeat received before this instant is in this batch or an earlier one; later ones are still pending
      // or being taken in.
      const cutAt = progressCut();
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
    heldByLoopGap();
    if (pending.length === 0 && !writing) void flush();
  }, idleMs);

  const submit = (heartbeat: HeartbeatRecord) => {
    if (stopped) return Promise.reject(new Error("heartbeat ingestion stopped"));
    return new Promise<void>((resolve, reject) => {
      pending.push({ ...heartbeat, receivedAt: new Date(), done: (error) => (error ? reject(error) : resolve()) });
      schedule();
    });
  };

  return {
    submit,
    async take(intake) {
      const arrival = { at: new Date() };
      arriving.add(arrival);
      let written: Promise<void>;
      try {
        // It becomes pending in the same turn it stops arriving, so no progress cut can miss it.
        written = submit(await intake());
      } finally {
        arriving.delete(arrival);
      }
      await written;
    },
    databaseNow: () => Date.now() + clockOffsetMs,
    async stop() {
      stopped = true;
      clearInterval(idle);
      await writing;
      await flush();
      await db.execute(sql`delete from ingestion_progress where instance_id = ${options.instanceId}`);
    },
  };
}
