import { and, eq, inArray, type SQL, sql } from "drizzle-orm";
import type { Transaction } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { alerts } from "../../db/schema.js";
import type { AlertKind } from "../kernel/kinds.js";
import type { FlappingRule } from "./alert-rules.js";
import { recordTransition } from "./alert-transitions.js";

/**
 * Flap detection. A server's liveness is down (OFFLINE, UNREACHABLE) or not; a server whose liveness
 * changes more than `changes` times within `windowSeconds` is flapping. Its changes are kept on its
 * one open `server_flapping` alert: pending while it changes without crossing the threshold (dropped
 * without a notice once a whole window passes without a change), firing once it crosses it (one
 * notice), resolved once `settleSeconds` pass without a change (one notice). The row keeps at most
 * `changes + 1` change times (a rule allows at most 100), so counting costs one locked row per status
 * event, whatever the server does. While it fires, the server's OFFLINE and UNREACHABLE alerts stay
 * pending instead of paging (`heldByFlapping`); one still holding when it settles fires then.
 */
export const FLAPPING: AlertKind = "server_flapping";

type AlertRow = typeof alerts.$inferSelect;

const DOWN = ["OFFLINE", "UNREACHABLE"];

/** Does a status change from `from` to `to` change the server's liveness? (OFFLINE → UNREACHABLE does not.) */
export function livenessChanged(from: unknown, to: unknown): boolean {
  return DOWN.includes(String(from)) !== DOWN.includes(String(to));
}

const timesOf = (details: unknown): string[] => {
  const list = (details as { changedAt?: unknown } | null)?.changedAt;
  return Array.isArray(list) ? list.filter((t): t is string => typeof t === "string") : [];
};

/**
 * Records one liveness change of `server` at `at` (the event's time) on its flapping alert, opening a
 * pending one; answers the alert when this change crossed the threshold (the caller fires it).
 */
export async function recordLivenessChange(
  tx: Transaction,
  server: { id: string; ownerId: string; name: string },
  at: Date,
  rule: FlappingRule,
): Promise<AlertRow | undefined> {
  const [open] = await tx
    .select()
    .from(alerts)
    .where(
      and(
        eq(alerts.ownerId, server.ownerId),
        eq(alerts.rule, FLAPPING),
        eq(alerts.subject, server.id),
        inArray(alerts.state, ["pending", "firing"]),
      ),
    )
    .for("update");
  const changedAt = [...timesOf(open?.details), at.toISOString()].slice(-(rule.changes + 1));
  const counted = changedAt.filter((t) => Date.parse(t) > at.getTime() - rule.windowSeconds * 1000).length;
  const details = {
    serverName: server.name,
    changes: counted,
    windowSeconds: rule.windowSeconds,
    settleSeconds: rule.settleSeconds,
    lastChangeAt: at.toISOString(),
    changedAt,
  };
  const summary = `server ${server.name} is flapping: ${counted} liveness changes in ${rule.windowSeconds} s (more than ${rule.changes})`;
  const [row] = open
    ? await tx
        .update(alerts)
        // A firing alert keeps the summary its notice said; its details follow the changes.
        .set(open.state === "pending" ? { details, summary } : { details })
        .where(eq(alerts.id, open.id))
        .returning()
    : await tx
        .insert(alerts)
        .values({
          id: newId(),
          ownerId: server.ownerId,
          serverId: server.id,
          rule: FLAPPING,
          subject: server.id,
          state: "pending",
          summary,
          details,
          since: at,
        })
        .returning();
  if (row && !open) await recordTransition(tx, row, at);
  return row?.state === "pending" && counted > rule.changes ? row : undefined;
}

/**
 * Open flapping alerts with nothing left to wait for: a firing one whose server has not changed for
 * its settle period, a pending one whose last change has left the window. Locked for the caller to end.
 */
export async function settledFlappingAlerts(tx: Transaction): Promise<AlertRow[]> {
  const quiet = sql`case when ${alerts.state} = 'firing' then ${alerts.details}->>'settleSeconds' else ${alerts.details}->>'windowSeconds' end`;
  return tx
    .select()
    .from(alerts)
    .where(
      and(
        eq(alerts.rule, FLAPPING),
        inArray(alerts.state, ["pending", "firing"]),
        sql`(${alerts.details}->>'lastChangeAt')::timestamptz <= now() - make_interval(secs => (${quiet})::float8)`,
      ),
    )
    .for("update");
}

const HELD: AlertKind[] = ["server_offline", "server_unreachable"];

/**
 * SQL: the `alerts` row at hand is an OFFLINE or UNREACHABLE alert of a server whose flapping alert
 * fires, so it waits (a HOSTKEY_MISMATCH never does).
 */
export const heldByFlapping: SQL = sql`(${inArray(alerts.rule, HELD)} and exists (select 1 from alerts f where f.owner_id = ${alerts.ownerId} and f.rule = ${FLAPPING} and f.subject = ${alerts.serverId}::text and f.state = 'firing'))`;
