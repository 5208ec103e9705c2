import { and, asc, eq, inArray, isNull, ne, sql } from "drizzle-orm";
import type { Database, Transaction } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import {
  agents,
  alertRuleSettings,
  alerts,
  notificationChannels,
  notificationDeliveries,
  outboxEvents,
  rollouts,
  servers,
} from "../../db/schema.js";
import type { AlertKind, EventType } from "../kernel/kinds.js";
import { type AlertDefaults, type AlertRules, defaultAlertRules, mergeRules } from "./alert-rules.js";
import { usageOverWindow } from "./alert-samples.js";
import { recordTransition } from "./alert-transitions.js";
import { heldByFlapping, livenessChanged, recordLivenessChange, settledFlappingAlerts } from "./flapping.js";
import { type AlertNotice, messageFor } from "./notification-messages.js";

/**
 * Turns outbox events and heartbeat samples into alerts, and alerts into deliveries (one per
 * channel of the owner). Status alerts wait `graceSeconds` in `pending` before they fire; one that
 * ends within the grace period is dropped without a notice; a resolved notice only follows a fired
 * alert. Each pass runs in a transaction holding a try-lock, so one process at a time evaluates
 * (others skip the pass) and events are read in commit-independent `created_at, id` order.
 */

type AlertRow = typeof alerts.$inferSelect;

export interface EvaluationSettings {
  graceSeconds: number;
  defaults: AlertDefaults;
}

/** Namespace (first key) of the evaluation's advisory lock. */
const evaluationLockSpace = 0x0a1e07;

const STATUS_RULES: Record<string, { rule: AlertKind; enabled: (r: AlertRules) => boolean }> = {
  OFFLINE: { rule: "server_offline", enabled: (r) => r.serverOffline },
  UNREACHABLE: { rule: "server_unreachable", enabled: (r) => r.serverUnreachable },
  HOSTKEY_MISMATCH: { rule: "hostkey_mismatch", enabled: (r) => r.hostkeyMismatch },
};
const STATUS_OF_RULE = Object.fromEntries(Object.entries(STATUS_RULES).map(([status, r]) => [r.rule, status]));

/** The event types the evaluation reads; everything else is only marked as read. */
export const ALERTING_EVENT_TYPES = ["server.status_changed", "operation.failed", "rollout.failed"] as const satisfies readonly EventType[];

async function underEvaluationLock<T>(db: Database, idle: T, work: (tx: Transaction) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    const rows = await tx.execute(sql`select pg_try_advisory_xact_lock(${evaluationLockSpace}, 1) as locked`);
    const list = (Array.isArray(rows) ? rows : (rows as { rows: unknown[] }).rows) as { locked: boolean }[];
    if (!list[0]?.locked) return idle;
    return work(tx);
  });
}

async function rulesOf(tx: Transaction, ownerId: string, defaults: AlertDefaults): Promise<AlertRules> {
  const [row] = await tx.select({ rules: alertRuleSettings.rules }).from(alertRuleSettings).where(eq(alertRuleSettings.ownerId, ownerId));
  return mergeRules(defaultAlertRules(defaults), row?.rules);
}

function noticeOf(alert: AlertRow, event: AlertNotice["event"], id: string): AlertNotice {
  const details = alert.details as Record<string, unknown>;
  return {
    id,
    event,
    alertId: alert.id,
    rule: alert.rule,
    summary: alert.summary,
    serverId: alert.serverId ?? undefined,
    serverName: typeof details.serverName === "string" ? details.serverName : undefined,
    since: alert.since.toISOString(),
    firedAt: alert.firedAt?.toISOString(),
    resolvedAt: event === "resolved" ? alert.endedAt?.toISOString() : undefined,
    details,
  };
}

/**
 * One delivery per channel of the alert's owner; the delivery id is the message's dedupe id. A
 * resolved notice goes only to the channels that were sent the firing notice (not to one created
 * since, nor to one whose firing notice was given up on): a receiver never sees an end without a start.
 */
async function enqueueNotices(tx: Transaction, alert: AlertRow, event: "firing" | "resolved"): Promise<number> {
  const toldOfFiring = tx
    .select({ id: notificationDeliveries.channelId })
    .from(notificationDeliveries)
    .where(
      and(
        eq(notificationDeliveries.alertId, alert.id),
        eq(notificationDeliveries.event, "firing"),
        ne(notificationDeliveries.status, "failed"),
      ),
    );
  const channels = await tx
    .select({ id: notificationChannels.id, kind: notificationChannels.kind })
    .from(notificationChannels)
    .where(
      and(
        eq(notificationChannels.ownerId, alert.ownerId),
        event === "resolved" ? inArray(notificationChannels.id, toldOfFiring) : undefined,
      ),
    );
  if (channels.length === 0) return 0;
  await tx.insert(notificationDeliveries).values(
    channels.map((c) => {
      const id = newId();
      return {
        id,
        ownerId: alert.ownerId,
        channelId: c.id,
        alertId: alert.id,
        event,
        message: messageFor(c.kind, noticeOf(alert, event, id)),
      };
    }),
  );
  return channels.length;
}

async function openAlert(tx: Transaction, ownerId: string, rule: AlertKind, subject: string): Promise<AlertRow | undefined> {
  const [row] = await tx
    .select()
    .from(alerts)
    .where(
      and(eq(alerts.ownerId, ownerId), eq(alerts.rule, rule), eq(alerts.subject, subject), inArray(alerts.state, ["pending", "firing"])),
    )
    .for("update");
  return row;
}

/** Ends an open alert: a pending one is dropped silently (flapping), a firing one is resolved with a notice. */
async function endAlert(tx: Transaction, alert: AlertRow, details: Record<string, unknown> = {}): Promise<void> {
  const state = alert.state === "firing" ? "resolved" : "dropped";
  const [ended] = await tx
    .update(alerts)
    .set({ state, endedAt: sql`now()`, details: { ...(alert.details as Record<string, unknown>), ...details } })
    .where(eq(alerts.id, alert.id))
    .returning();
  if (!ended) return;
  await recordTransition(tx, ended);
  if (state === "resolved") await enqueueNotices(tx, ended, "resolved");
}

async function insertAlert(
  tx: Transaction,
  values: {
    ownerId: string;
    serverId?: string;
    rule: AlertKind;
    subject: string;
    state: "pending" | "firing" | "notified";
    summary: string;
    details: Record<string, unknown>;
    since: Date;
  },
): Promise<AlertRow | undefined> {
  const fired = values.state !== "pending";
  const [row] = await tx
    .insert(alerts)
    .values({ id: newId(), ...values, firedAt: fired ? sql`now()` : null })
    .onConflictDoNothing()
    .returning();
  if (!row) return row;
  await recordTransition(tx, row, fired ? undefined : values.since);
  if (fired) await enqueueNotices(tx, row, "firing");
  return row;
}

type OutboxRow = typeof outboxEvents.$inferSelect;

async function serverOf(tx: Transaction, serverId: unknown) {
  if (typeof serverId !== "string") return undefined;
  const [row] = await tx
    .select({ id: servers.id, ownerId: servers.ownerId, name: servers.name })
    .from(servers)
    .where(eq(servers.id, serverId));
  return row;
}

/** A rollout's owner, from its row: an event's payload names the rollout, never whom to alert. */
async function rolloutOwnerOf(tx: Transaction, rolloutId: string): Promise<string | undefined> {
  const [row] = await tx.select({ ownerId: rollouts.ownerId }).from(rollouts).where(eq(rollouts.id, rolloutId));
  return row?.ownerId;
}

async function applyEvent(tx: Transaction, event: OutboxRow, settings: EvaluationSettings): Promise<void> {
  const p = event.payload;
  if (event.type === "server.status_changed") {
    const server = await serverOf(tx, p.serverId);
    if (!server) return;
    const ended = STATUS_RULES[String(p.from)];
    if (ended) {
      const open = await openAlert(tx, server.ownerId, ended.rule, server.id);
      if (open) await endAlert(tx, open, { resolvedBy: `status ${String(p.to)}` });
    }
    const rules = await rulesOf(tx, server.ownerId, settings.defaults);
    if (rules.flapping.enabled && livenessChanged(p.from, p.to)) {
      const flapping = await recordLivenessChange(tx, server, event.createdAt, rules.flapping);
      if (flapping) await fireAlert(tx, flapping);
    }
    const started = STATUS_RULES[String(p.to)];
    if (started?.enabled(rules)) {
      await insertAlert(tx, {
        ownerId: server.ownerId,
        serverId: server.id,
        rule: started.rule,
        subject: server.id,
        state: "pending",
        summary: `server ${server.name} is ${String(p.to)}${p.reason ? `: ${String(p.reason)}` : ""}`,
        details: { serverName: server.name, status: p.to, reason: p.reason ?? "" },
        since: event.createdAt,
      });
    }
    return;
  }
  if (event.type === "operation.failed") {
    if (p.status !== "FAILED") return; // CANCELLED is the owner's own doing
    const server = await serverOf(tx, p.serverId);
    if (!server || !(await rulesOf(tx, server.ownerId, settings.defaults)).operationFailed) return;
    await insertAlert(tx, {
      ownerId: server.ownerId,
      serverId: server.id,
      rule: "operation_failed",
      subject: String(p.operationId ?? event.id),
      state: "notified",
      summary: `${String(p.kind ?? "an")} operation on ${server.name} failed${p.error ? `: ${String(p.error).slice(0, 500)}` : ""}`,
      details: { serverName: server.name, operationId: p.operationId, kind: p.kind },
      since: event.createdAt,
    });
    return;
  }
  if (event.type === "rollout.failed") {
    const rolloutId = String(p.rolloutId ?? event.key);
    const ownerId = await rolloutOwnerOf(tx, rolloutId);
    if (!ownerId || !(await rulesOf(tx, ownerId, settings.defaults)).rolloutFailed) return;
    const reason = p.error ?? p.reason;
    await insertAlert(tx, {
      ownerId,
      rule: "rollout_failed",
      subject: rolloutId,
      state: "notified",
      summary: `rollout ${rolloutId} failed${reason ? `: ${String(reason).slice(0, 500)}` : ""}`,
      details: { rolloutId },
      since: event.createdAt,
    });
  }
}

/** Reads up to `limit` outbox events the evaluation has not read yet, oldest first; returns how many. */
export async function evaluateOutboxEvents(db: Database, settings: EvaluationSettings, limit = 200): Promise<number> {
  return underEvaluationLock(db, 0, async (tx) => {
    const rows = await tx
      .select()
      .from(outboxEvents)
      .where(isNull(outboxEvents.alertsCheckedAt))
      .orderBy(asc(outboxEvents.createdAt), asc(outboxEvents.id))
      .limit(limit);
    if (rows.length === 0) return 0;
    for (const row of rows) {
      if ((ALERTING_EVENT_TYPES as readonly string[]).includes(row.type)) await applyEvent(tx, row, settings);
    }
    await tx
      .update(outboxEvents)
      .set({ alertsCheckedAt: sql`now()` })
      .where(
        inArray(
          outboxEvents.id,
          rows.map((r) => r.id),
        ),
      );
    return rows.length;
  });
}

async function fireAlert(tx: Transaction, alert: AlertRow): Promise<boolean> {
  const [row] = await tx.update(alerts).set({ state: "firing", firedAt: sql`now()` }).where(eq(alerts.id, alert.id)).returning();
  if (!row) return false;
  await recordTransition(tx, row);
  await enqueueNotices(tx, row, "firing");
  return true;
}

/**
 * Ends the flapping alerts of servers that have settled (core/alerts/flapping.ts), then fires the
 * pending status alerts that have held for the grace period and whose server is still in that status
 * (an event that ends them may not have been read yet), but not OFFLINE/UNREACHABLE of a flapping server;
 * returns how many fired.
 */
export async function firePendingAlerts(db: Database, graceSeconds: number): Promise<number> {
  return underEvaluationLock(db, 0, async (tx) => {
    for (const settled of await settledFlappingAlerts(tx)) await endAlert(tx, settled, { settled: true });
    const due = await tx
      .select({ alert: alerts, status: servers.status })
      .from(alerts)
      .innerJoin(servers, eq(servers.id, alerts.serverId))
      .where(
        and(
          eq(alerts.state, "pending"),
          inArray(alerts.rule, Object.keys(STATUS_OF_RULE) as AlertKind[]),
          sql`${alerts.since} <= now() - make_interval(secs => ${graceSeconds})`,
          sql`not ${heldByFlapping}`,
        ),
      )
      .for("update", { of: alerts });
    let fired = 0;
    for (const { alert, status } of due) {
      if (STATUS_OF_RULE[alert.rule] === status && (await fireAlert(tx, alert))) fired += 1;
    }
    return fired;
  });
}

const RESOURCES = [
  { rule: "disk", name: "disk usage", min: "diskMin", max: "diskMax" },
  { rule: "memory", name: "memory usage", min: "memoryMin", max: "memoryMax" },
] as const;

/**
 * Disk and memory rules from the raw samples: an alert fires when every sample of the owner's
 * window is above the threshold and the samples cover at least half the window (one spike, or one
 * sample after a silence, is not "sustained"); it is resolved when every sample of the window is
 * below the threshold again. Servers without samples in the window are left as they are.
 */
export async function evaluateResourceAlerts(db: Database, settings: EvaluationSettings): Promise<{ fired: number; resolved: number }> {
  return underEvaluationLock(db, { fired: 0, resolved: 0 }, async (tx) => {
    const fleet = await tx
      .select({ id: servers.id, ownerId: servers.ownerId, name: servers.name })
      .from(servers)
      .innerJoin(agents, eq(agents.serverId, servers.id));
    if (fleet.length === 0) return { fired: 0, resolved: 0 };
    const ownerIds = [...new Set(fleet.map((s) => s.ownerId))];
    const stored = await tx.select().from(alertRuleSettings).where(inArray(alertRuleSettings.ownerId, ownerIds));
    const rulesByOwner = new Map(ownerIds.map((id) => [id, defaultAlertRules(settings.defaults)]));
    for (const row of stored) rulesByOwner.set(row.ownerId, mergeRules(defaultAlertRules(settings.defaults), row.rules));
    const open = await tx
      .select()
      .from(alerts)
      .where(and(eq(alerts.state, "firing"), inArray(alerts.rule, ["disk", "memory"])));
    const openByKey = new Map(open.map((a) => [`${a.rule}:${a.subject}`, a]));
    let fired = 0;
    let resolved = 0;
    for (const resource of RESOURCES) {
      const byWindow = new Map<number, typeof fleet>();
      for (const s of fleet) {
        const seconds = (rulesByOwner.get(s.ownerId) as AlertRules)[resource.rule].sustainedSeconds;
        byWindow.set(seconds, [...(byWindow.get(seconds) ?? []), s]);
      }
      for (const [seconds, group] of byWindow) {
        const usage = new Map(
          (
            await usageOverWindow(
              tx,
              group.map((s) => s.id),
              seconds,
            )
          ).map((u) => [u.serverId, u]),
        );
        for (const s of group) {
          const u = usage.get(s.id);
          const rule = (rulesByOwner.get(s.ownerId) as AlertRules)[resource.rule];
          const low = u?.[resource.min];
          const high = u?.[resource.max];
          if (!u || low === null || low === undefined || high === null || high === undefined) continue;
          const current = openByKey.get(`${resource.rule}:${s.id}`);
          if (current) {
            if (high < rule.thresholdPercent) {
              await endAlert(tx, current, { lowestPercent: round(low), highestPercent: round(high) });
              resolved += 1;
            }
            continue;
          }
          if (rule.enabled && u.samples >= 2 && u.spanSeconds >= seconds / 2 && low >= rule.thresholdPercent) {
            const row = await insertAlert(tx, {
              ownerId: s.ownerId,
              serverId: s.id,
              rule: resource.rule,
              subject: s.id,
              state: "firing",
              summary: `${resource.name} of ${s.name} above ${rule.thresholdPercent}% for ${seconds} s (lowest ${round(low)}%)`,
              details: {
                serverName: s.name,
                thresholdPercent: rule.thresholdPercent,
                sustainedSeconds: seconds,
                lowestPercent: round(low),
              },
              since: new Date(Date.now() - seconds * 1000),
            });
            if (row) fired += 1;
          }
        }
      }
    }
    return { fired, resolved };
  });
}

const round = (v: number) => Math.round(v * 10) / 10;
