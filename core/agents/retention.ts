import { sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { defaultInstanceDeadAfter } from "../kernel/config.js";
import { INGESTION_STALL_SECONDS } from "./liveness.js";

export interface RetentionSettings {
  /**
   * Whether a Kafka relay publishes the outbox (KAFKA_BROKERS set): then an event is kept until
   * published. Without one nothing ever publishes, and the retention counts from the event's creation.
   */
  outboxRelayed: boolean;
  /** Published outbox events older than this are deleted (unpublished ones, and ones the alert evaluation has not read, never are). */
  outboxRetentionHours: number;
  /** Ingestion progress of instances that have not reported for this long is deleted. */
  ingestionProgressRetentionHours: number;
  /** The liveness timeout: rows the sweep still reads are never deleted, whatever the retention says. */
  heartbeatTimeoutSeconds: number;
  /** How long the sweep reads a silent instance's row (`AGENT_INSTANCE_DEAD_AFTER`); unset: its default. */
  instanceDeadAfterSeconds?: number;
}

export interface PruneResult {
  outboxEvents: number;
  ingestionProgress: number;
}

/** Deleted per statement, so pruning a large backlog never holds one long transaction. */
const OUTBOX_BATCH = 5000;

async function countOf(db: Database, statement: ReturnType<typeof sql>): Promise<number> {
  const result = await db.execute(statement);
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as { n: number }[];
  return Number(rows[0]?.n ?? 0);
}

/**
 * Keeps the tables that only grow bounded, by the database's clock. Outbox
 * events alerting has read are deleted in batches once older than the
 * retention: published ones by their publication, and when no relay publishes,
 * all of them by their creation. An
 * ingestion progress row is deleted only when the liveness sweep can no longer
 * read it: the sweep looks at rows updated within the instance dead-after
 * (how far ingestion has caught up) and within the stall window (who is listening now),
 * so the cutoff is the longer of the retention and those windows.
 */
export async function pruneRetained(db: Database, settings: RetentionSettings): Promise<PruneResult> {
  let outboxEvents = 0;
  for (;;) {
    const deleted = await countOf(
      db,
      sql`with d as (
        delete from outbox_events where id in (
          select id from outbox_events
          where alerts_checked_at is not null and ${
            settings.outboxRelayed
              ? sql`published_at is not null and published_at < now() - make_interval(hours => ${settings.outboxRetentionHours})`
              : sql`created_at < now() - make_interval(hours => ${settings.outboxRetentionHours})`
          }
          limit ${OUTBOX_BATCH})
        returning 1)
      select count(*)::int as n from d`,
    );
    outboxEvents += deleted;
    if (deleted < OUTBOX_BATCH) break;
  }
  const keepSeconds = Math.max(
    settings.ingestionProgressRetentionHours * 3600,
    Math.max(
      settings.heartbeatTimeoutSeconds * 2,
      settings.instanceDeadAfterSeconds ?? defaultInstanceDeadAfter(settings.heartbeatTimeoutSeconds),
    ) + INGESTION_STALL_SECONDS,
  );
  const ingestionProgress = await countOf(
    db,
    sql`with d as (delete from ingestion_progress where updated_at < now() - make_interval(secs => ${keepSeconds}) returning 1)
      select count(*)::int as n from d`,
  );
  return { outboxEvents, ingestionProgress };
}
