import { sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { recordAudit } from "../audit/record.js";
import { LIVENESS_REVIVES, LIVENESS_REVIVES_AFTER_REGISTRATION } from "../inventory/server-status.js";
import { defaultInstanceDeadAfter } from "../kernel/config.js";
import { errorSummary, log } from "../kernel/log.js";
import { SERVER_EVENTS_TOPIC } from "../kernel/outbox.js";

export interface SweepResult {
  offline: number;
  /** Servers that just went OFFLINE. */
  offlineIds: string[];
  online: number;
  /** Heartbeats received before this instant are known to be in the database; undefined when no ingester reported. */
  caughtUpTo?: string;
  /** Ingestion instances that stopped reporting and are not yet declared dead: they hold `caughtUpTo` back. */
  heldBy: { instanceId: string; lastReportedAt: string }[];
}

export interface SweepOptions {
  /**
   * An ingestion instance that has not reported for this long is dead: its progress no longer holds the
   * sweep back (`AGENT_INSTANCE_DEAD_AFTER`; at least two timeouts). Unset: the configuration's default.
   */
  instanceDeadAfterSeconds?: number;
}

/**
 * An ingestion instance that has written no progress for this long is stalled
 * (every instance writes progress at least once a second, even when idle).
 */
export const INGESTION_STALL_SECONDS = 5;

/**
 * One statement: servers whose last heartbeat is older than the timeout become
 * OFFLINE, servers heard from again become ONLINE, each change with a reason,
 * a time and an outbox event. "Older" is measured from how far heartbeat
 * ingestion has caught up (the slowest ingester not declared dead), never from
 * the wall clock alone, so a stalled database, a backlog of unwritten
 * heartbeats or a frozen API instance cannot turn healthy servers OFFLINE.
 *
 * An instance that stops reporting (frozen, cut off from the database,
 * crashed: from here they look alike) may hold heartbeats it has not written,
 * from any agent: behind a load balancer an agent last heard by one instance
 * may have its next heartbeat waiting in another. So its last progress keeps
 * holding the cut: a server silent since a timeout before that instance
 * stopped is still judged; one heard later waits until the instance reports
 * again (its held heartbeats are then written), stops cleanly (it deletes its
 * row) or is declared dead after `instanceDeadAfterSeconds` without a report.
 *
 * Only silence that could have been heard counts: after an outage of ingestion
 * (no instance reporting progress: the service stopped, restarted, frozen), the
 * silence before ingestion resumed is not counted, as the Kubernetes node
 * controller does after its own restart. Ingestion has been running since the
 * earliest `running_since` of the instances reporting now; nothing goes OFFLINE
 * until that is at least a timeout ago. The same statement keeps `running_since`
 * true: cleared for a stalled instance, set again when it reports again.
 *
 * The silent servers are collected as an array first: the cutoff is only known
 * at run time, so a plain join is planned for a third of the fleet (hash join,
 * full scan of servers); `id = any(array(...))` is planned as primary-key
 * lookups for the few that really are silent.
 */
/** The monitor's changes on record (core/audit/): one entry per server it marked OFFLINE (rare: a fleet-wide outage at most). */
async function recordMarkedOffline(db: Database, serverIds: string[], ownerIds: string[]): Promise<void> {
  for (const [i, serverId] of serverIds.entries()) {
    await recordAudit(db, {
      ownerId: ownerIds[i],
      actor: { kind: "system", name: "monitor" },
      action: "server.marked_offline",
      targetIds: [serverId],
      outcome: "ok",
    }).catch((error) => log.error("audit entry for a server marked OFFLINE not recorded", { serverId, ...errorSummary(error) }));
  }
}

export async function sweepLiveness(db: Database, timeoutSeconds: number, options: SweepOptions = {}): Promise<SweepResult> {
  const deadAfterSeconds = Math.max(options.instanceDeadAfterSeconds ?? defaultInstanceDeadAfter(timeoutSeconds), 2 * timeoutSeconds);
  // The liveness moves of the state machine (core/inventory/server-status.ts), made in one statement.
  const list = (statuses: readonly string[]) =>
    sql.join(
      statuses.map((s) => sql`${s}`),
      sql`, `,
    );
  const revivable = list(LIVENESS_REVIVES);
  const revivableAfterRegistration = list(LIVENESS_REVIVES_AFTER_REGISTRATION);
  const result = await db.execute(sql`
    with progress as (
      select min(caught_up_to) as caught_up_to from ingestion_progress
      where updated_at > now() - make_interval(secs => ${deadAfterSeconds})
    ),
    running as (
      select instance_id, updated_at >= now() - make_interval(secs => ${INGESTION_STALL_SECONDS}) as live, running_since
      from ingestion_progress
    ),
    listening as (select min(coalesce(running_since, now())) as since from running where live),
    marked as (
      update ingestion_progress p set running_since = case when r.live then coalesce(p.running_since, now()) end
      from running r
      where r.instance_id = p.instance_id and (p.running_since is null) = r.live
      returning 1
    ),
    cutoff as (
      select least(now(), caught_up_to) - make_interval(secs => ${timeoutSeconds}) as at, caught_up_to,
        (select since from listening) as listening_since
      from progress
    ),
    went_offline as (
      update servers s set status = 'OFFLINE', status_reason = ${`no heartbeat for more than ${timeoutSeconds} s`},
        status_changed_at = now(), updated_at = now()
      where s.status = 'ONLINE' and s.id = any(array(
        select a.server_id from agents a, cutoff c
        where c.caught_up_to is not null and c.listening_since <= c.at
          and (a.last_heartbeat_at is null or a.last_heartbeat_at < c.at)
      ))
      returning s.id, 'ONLINE'::text as previous, 'OFFLINE'::text as current, s.status_reason as reason
    ),
    came_online as (
      update servers s set status = 'ONLINE', status_reason = 'agent heartbeats received', status_changed_at = now(), updated_at = now()
      from servers old, agents a, cutoff c
      where old.id = s.id and a.server_id = s.id
        and (s.status in (${revivable})
          or (s.status in (${revivableAfterRegistration}) and a.registered_at is not null and a.registered_at > s.status_changed_at))
        and a.last_heartbeat_at is not null and a.last_heartbeat_at >= coalesce(c.at, now() - make_interval(secs => ${timeoutSeconds}))
      returning s.id, old.status::text as previous, 'ONLINE'::text as current, s.status_reason as reason
    ),
    changes as (select * from went_offline union all select * from came_online),
    events as (
      insert into outbox_events (id, topic, key, type, payload)
      select gen_random_uuid(), ${SERVER_EVENTS_TOPIC}, c.id::text, 'server.status_changed',
        jsonb_build_object('serverId', c.id, 'from', c.previous, 'to', c.current, 'reason', c.reason, 'at', now())
      from changes c
      returning 1
    )
    select (select count(*) from went_offline)::int as offline, (select count(*) from came_online)::int as online,
      (select caught_up_to from progress) as caught_up_to, (select count(*) from events)::int as events,
      (select count(*) from marked)::int as marked,
      (select coalesce(json_agg(id order by id), '[]'::json) from went_offline) as offline_ids,
      (select coalesce(json_agg(s.owner_id order by w.id), '[]'::json) from went_offline w join servers s on s.id = w.id) as offline_owners,
      (select coalesce(json_agg(json_build_object('instanceId', instance_id, 'lastReportedAt', updated_at) order by instance_id), '[]'::json)
        from ingestion_progress
        where updated_at < now() - make_interval(secs => ${INGESTION_STALL_SECONDS})
          and updated_at > now() - make_interval(secs => ${deadAfterSeconds})) as held_by
  `);
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as {
    offline: number;
    online: number;
    caught_up_to: string | Date | null;
    offline_ids: string[] | string;
    offline_owners: string[] | string;
    held_by: SweepResult["heldBy"] | string;
  }[];
  const row = rows[0];
  const offlineIds: string[] = typeof row?.offline_ids === "string" ? JSON.parse(row.offline_ids) : (row?.offline_ids ?? []);
  const offlineOwners: string[] = typeof row?.offline_owners === "string" ? JSON.parse(row.offline_owners) : (row?.offline_owners ?? []);
  await recordMarkedOffline(db, offlineIds, offlineOwners);
  return {
    offline: Number(row?.offline ?? 0),
    offlineIds,
    online: Number(row?.online ?? 0),
    caughtUpTo: row?.caught_up_to ? new Date(row.caught_up_to).toISOString() : undefined,
    heldBy: typeof row?.held_by === "string" ? JSON.parse(row.held_by) : (row?.held_by ?? []),
  };
}
