import { sql } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { errorSummary, log } from "./log.js";

export interface HeartbeatRecord {
  serverId: string;
  sampledAt: Date;
  metrics: Record<string, unknown>;
}

interface Pending extends HeartbeatRecord {
  receivedAt: Date;
  done: (error?: unknown) => void;
}

export interface HeartbeatIngestor {
  /** Resolves once the heartbeat is in the database. */
  submit(heartbeat: HeartbeatRecord): Promise<void>;
  stop(): Promise<void>;
}

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
  let scheduled = false;
  let writing: Promise<void> | undefined;
  let stopped = false;

  /** One statement (one round trip, atomic): latest state per server, every sample, and how far this instance has caught up. */
  const write = async (batch: Pending[], caughtUpTo: Date) => {
    const samples = JSON.stringify(
      batch.map((h) => ({
        server_id: h.serverId,
        sampled_at: h.sampledAt.toISOString(),
        received_at: h.receivedAt.toISOString(),
        metrics: h.metrics,
      })),
    );
    await db.execute(sql`
      with v as (
        select * from jsonb_to_recordset(${samples}::jsonb)
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
      )
      insert into ingestion_progress (instance_id, caught_up_to, updated_at)
      values (${options.instanceId}, ${caughtUpTo.toISOString()}::timestamptz, now())
      on conflict (instance_id) do update set caught_up_to = excluded.caught_up_to, updated_at = now()`);
  };

  /** Writes what is pending (at most `maxBatch` at a time), then keeps going while more has gathered. */
  const drain = async (): Promise<void> => {
    do {
      const batch = pending.slice(0, maxBatch);
      pending = pending.slice(batch.length);
      // Every heartbeat received before this instant is in this batch or an earlier one; later ones are still pending.
      const cutAt = pending.length > 0 ? (pending[0] as Pending).receivedAt : new Date();
      try {
        await write(batch, cutAt);
        for (const hb of batch) hb.done();
      } catch (error) {
        log.warn("heartbeat batch not written", { size: batch.length, ...errorSummary(error) });
        for (const hb of batch) hb.done(error);
      }
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
    async stop() {
      stopped = true;
      clearInterval(idle);
      await writing;
      await flush();
    },
  };
}
