import { type SQL, sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import type { AuditAction, AuditActorKind, AuditOutcome, SystemActorName } from "../kernel/kinds.js";
import { AUDIT_EVENTS_TOPIC } from "../kernel/outbox.js";
import { pgArray } from "../kernel/pg-array.js";
import { type AuditFields, canonicalEntry, GENESIS_HASH, INSTALLATION_CHAIN } from "./chain.js";
import { boundedShort, boundedTargets, boundedUserAgent } from "./entry.js";

export type AuditActor = { kind: Exclude<AuditActorKind, "system">; id: string } | { kind: "system"; name: SystemActorName };

/** What a recorder tells: every outside value in it is bounded and escaped here. */
export interface AuditRecord {
  /** The organization; absent for a caller refused before it named one (the installation's chain). */
  ownerId?: string;
  actor: AuditActor;
  /** A declared action, or an RPC's full method name (`package.Service/Method`). */
  action: AuditAction | `${string}/${string}`;
  targetIds?: readonly string[];
  clientAddress?: string | null;
  userAgent?: string | null;
  requestId?: string | null;
  traceId?: string | null;
  /** Bounded names only (an SSH login's step), never free text. */
  detail?: string | null;
  outcome: AuditOutcome;
}

/**
 * The append as a named prepared statement: `db.execute` sends raw SQL unprepared, so PostgreSQL
 * would parse and plan this five-part statement on every call (most of an append's cost). Drizzle
 * prepares only through its session, which both drivers (postgres.js, PGlite) implement.
 */
function prepared(db: Database, statement: SQL): { execute(): Promise<unknown> } {
  const internals = db as unknown as {
    dialect: { sqlToQuery(s: SQL): unknown };
    session: { prepareQuery(query: unknown, fields: undefined, name: string, arrayMode: boolean): { execute(): Promise<unknown> } };
  };
  return internals.session.prepareQuery(internals.dialect.sqlToQuery(statement), undefined, "audit_append", false);
}

const rowsOf = <T>(result: unknown): T[] => (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];

export function auditFields(record: AuditRecord, at = new Date()): AuditFields {
  return {
    id: newId(),
    at: new Date(Math.floor(at.getTime())),
    ownerId: record.ownerId ?? INSTALLATION_CHAIN,
    actorKind: record.actor.kind,
    actorId: record.actor.kind === "system" ? "" : (boundedShort(record.actor.id) ?? ""),
    actorName: record.actor.kind === "system" ? record.actor.name : null,
    action: boundedShort(record.action) ?? "",
    targetIds: boundedTargets(record.targetIds ?? []),
    clientAddress: boundedShort(record.clientAddress),
    userAgent: boundedUserAgent(record.userAgent),
    requestId: boundedShort(record.requestId),
    traceId: boundedShort(record.traceId),
    detail: boundedShort(record.detail),
    outcome: record.outcome,
  };
}

/**
 * Appends one entry to its organization's chain and its `audit.recorded` event to the outbox, in
 * one statement: the chain head's row is upserted (its row lock serialises appends to one chain,
 * and only that chain), the new hash computed from the head's in SQL (core/audit/chain.ts has the
 * same formula), and the entry and the event are written from what the head returned.
 */
export async function recordAudit(db: Database, record: AuditRecord): Promise<{ seq: number; hash: string }> {
  const e = auditFields(record);
  const canonical = canonicalEntry(e);
  const next = (previous: ReturnType<typeof sql>, seq: ReturnType<typeof sql>) =>
    sql`encode(sha256(decode(${previous}, 'hex') || int8send(${seq}) || convert_to(${canonical}::text, 'UTF8')), 'hex')`;
  const event = {
    id: e.id,
    time: e.at.toISOString(),
    ownerId: e.ownerId,
    actor: { kind: e.actorKind, id: e.actorId, name: e.actorName },
    action: e.action,
    targetIds: e.targetIds,
    clientAddress: e.clientAddress,
    userAgent: e.userAgent,
    requestId: e.requestId,
    traceId: e.traceId,
    detail: e.detail,
    outcome: e.outcome,
  };
  const [row] = rowsOf<{ seq: string | number; hash: string }>(
    await prepared(
      db,
      sql`
      with head as (
        insert into audit_chains as c (owner_id, last_seq, last_hash)
        values (${e.ownerId}, 1, ${next(sql`${GENESIS_HASH}::text`, sql`1::bigint`)})
        on conflict (owner_id) do update
          set last_seq = c.last_seq + 1, last_hash = ${next(sql`c.last_hash`, sql`c.last_seq + 1`)}
        returning last_seq, last_hash
      ), entry as (
        insert into audit_events (owner_id, seq, id, at, actor_kind, actor_id, actor_name, action, target_ids,
          client_address, user_agent, request_id, trace_id, detail, outcome, hash)
        select ${e.ownerId}, head.last_seq, ${e.id}, ${e.at.toISOString()}::timestamptz, ${e.actorKind}, ${e.actorId}, ${e.actorName},
          ${e.action}, ${pgArray(e.targetIds)}::text[], ${e.clientAddress}, ${e.userAgent},
          ${e.requestId}, ${e.traceId}, ${e.detail}, ${e.outcome}, head.last_hash
        from head
        returning seq, hash
      ), event as (
        insert into outbox_events (id, topic, key, type, payload)
        select ${newId()}, ${AUDIT_EVENTS_TOPIC}, ${e.ownerId}, 'audit.recorded',
          ${JSON.stringify(event)}::jsonb || jsonb_build_object('seq', entry.seq, 'hash', entry.hash)
        from entry
      )
      select seq, hash from entry`,
    ).execute(),
  );
  if (!row) throw new Error("audit append wrote no entry");
  return { seq: Number(row.seq), hash: row.hash };
}
