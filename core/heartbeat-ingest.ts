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
 * Batches heartbeats: many heartbeats, one statement per table. A batch is
 * written when it reaches `maxBatch` or `maxDelayMs` after its first heartbeat.
 * Each flush also records how far this instance has caught up, which the
 * liveness sweep uses to never outrun ingestion.
 */
export function startHeartbeatIngestor(
  db: Database,
  options: { instanceId: string; maxBatch?: number; maxDelayMs?: number; idleProgressMs?: number },
): HeartbeatIngestor {
  const maxBatch = options.maxBatch ?? 2000;
  const maxDelayMs = options.maxDelayMs ?? 20;
  let pending: Pending[] = [];
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();
  let stopped = false;

  const write = async (batch: Pending[], caughtUpTo: Date) => {
    // The latest heartbeat per server sets its state; every one becomes a sample.
    const latest = new Map<string, Pending>();
    for (const hb of batch) latest.set(hb.serverId, hb);
    const rows = JSON.stringify(
      [...latest.values()].map((h) => ({ server_id: h.serverId, received_at: h.receivedAt.toISOString(), metrics: h.metrics })),
    );
    const samples = JSON.stringify(
      batch.map((h) => ({
        server_id: h.serverId,
        sampled_at: h.sampledAt.toISOString(),
        received_at: h.receivedAt.toISOString(),
        metrics: h.metrics,
      })),
    );
    await db.transaction(async (tx) => {
      if (batch.length > 0) {
        await tx.execute(sql`update agents a set last_heartbeat_at = v.received_at, latest_metrics = v.metrics
          from jsonb_to_recordset(${rows}::jsonb) as v(server_id uuid, received_at timestamptz, metrics jsonb)
          where a.server_id = v.server_id and (a.last_heartbeat_at is null or a.last_heartbeat_at < v.received_at)`);
        await tx.execute(sql`insert into metrics_samples (server_id, sampled_at, received_at, metrics)
          select v.server_id, v.sampled_at, v.received_at, v.metrics
          from jsonb_to_recordset(${samples}::jsonb) as v(server_id uuid, sampled_at timestamptz, received_at timestamptz, metrics jsonb)
          where exists (select 1 from agents a where a.server_id = v.server_id)`);
      }
      await tx.execute(sql`insert into ingestion_progress (instance_id, caught_up_to, updated_at)
        values (${options.instanceId}, ${caughtUpTo.toISOString()}::timestamptz, now())
        on conflict (instance_id) do update set caught_up_to = excluded.caught_up_to, updated_at = now()`);
    });
  };

  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = [];
    // Every heartbeat received before this instant is in this batch or an earlier one.
    const cutAt = new Date();
    flushing = flushing.then(async () => {
      try {
        await write(batch, cutAt);
        for (const hb of batch) hb.done();
      } catch (error) {
        log.warn("heartbeat batch not written", { size: batch.length, ...errorSummary(error) });
        for (const hb of batch) hb.done(error);
      }
    });
    return flushing;
  };

  // With no heartbeats at all, progress still advances (nothing is pending).
  const idle = setInterval(() => {
    if (pending.length === 0) void flush();
  }, options.idleProgressMs ?? 1000);

  return {
    submit(heartbeat) {
      if (stopped) return Promise.reject(new Error("heartbeat ingestion stopped"));
      return new Promise<void>((resolve, reject) => {
        pending.push({ ...heartbeat, receivedAt: new Date(), done: (error) => (error ? reject(error) : resolve()) });
        if (pending.length >= maxBatch) void flush();
        else timer ??= setTimeout(() => void flush(), maxDelayMs);
      });
    },
    async stop() {
      stopped = true;
      clearInterval(idle);
      await flush();
    },
  };
}
