import { and, asc, desc, eq, isNotNull, lt } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { alerts, alertTransitions, notificationChannels, notificationDeliveries } from "../../db/schema.js";
import { type OwnerScope, withinClustersByServer } from "../inventory/owner-scope.js";
import type { Owner } from "../inventory/owners.js";
import { AppError } from "../kernel/errors.js";
import { requireId } from "../kernel/ids.js";
import type { AlertKind, AlertState, DeliveryStatus, NotificationChannelKind } from "../kernel/kinds.js";
import { type PageRequest, toPage } from "../kernel/pagination.js";
import { displaySafe } from "../kernel/text.js";

/** What ListAlerts and GetAlert show of an alert, its history and its deliveries (no message body, no channel URL). */

export interface AlertView {
  id: string;
  kind: AlertKind;
  state: AlertState;
  serverId?: string;
  serverName?: string;
  subject: string;
  summary: string;
  since: Date;
  firedAt?: Date;
  endedAt?: Date;
}

export interface AlertDeliveryView {
  channelId: string;
  channelName: string;
  channelKind: NotificationChannelKind;
  event: AlertState;
  status: DeliveryStatus;
  attempts: number;
  lastError: string;
  createdAt: Date;
  deliveredAt?: Date;
}

export interface AlertFilter {
  serverId?: string;
  kind?: AlertKind;
  state?: AlertState;
}

/** The longest last-error excerpt shown (the row keeps what the sender wrote: never the URL). */
const LAST_ERROR_MAX = 200;

function view(row: typeof alerts.$inferSelect): AlertView {
  const serverName = (row.details as Record<string, unknown>).serverName;
  return {
    id: row.id,
    kind: row.rule,
    state: row.state,
    serverId: row.serverId ?? undefined,
    serverName: typeof serverName === "string" ? serverName : undefined,
    subject: row.subject,
    summary: row.summary,
    since: row.since,
    firedAt: row.firedAt ?? undefined,
    endedAt: row.endedAt ?? undefined,
  };
}

/** A limited caller sees the alerts of its clusters' servers; an alert of no server (a failed rollout) is the whole owner's. */
function alertWithinClusters(scope: OwnerScope) {
  const inside = withinClustersByServer(scope, alerts.serverId);
  return inside && and(isNotNull(alerts.serverId), inside);
}

/** An owner's alerts, newest first (ids are time-ordered). */
export async function listAlerts(db: Database, owner: Owner, filter: AlertFilter, page: PageRequest) {
  const serverId = filter.serverId ? requireId("server_id", filter.serverId) : undefined;
  const rows = await db
    .select()
    .from(alerts)
    .where(
      and(
        eq(alerts.ownerId, owner.id),
        alertWithinClusters(owner),
        serverId ? eq(alerts.serverId, serverId) : undefined,
        filter.kind ? eq(alerts.rule, filter.kind) : undefined,
        filter.state ? eq(alerts.state, filter.state) : undefined,
        page.afterId ? lt(alerts.id, page.afterId) : undefined,
      ),
    )
    .orderBy(desc(alerts.id))
    .limit(page.pageSize + 1);
  const { items, nextPageToken } = toPage(rows, page);
  return { items: items.map(view), nextPageToken };
}

/** One alert of the owner with each state it entered and its deliveries; another owner's id is NotFound. */
export async function getAlert(db: Database, owner: Owner, id: string) {
  const alertId = requireId("id", id);
  const [row] = await db
    .select()
    .from(alerts)
    .where(and(eq(alerts.id, alertId), eq(alerts.ownerId, owner.id), alertWithinClusters(owner)));
  if (!row) throw AppError.notFound("alert", alertId);
  const history = await db
    .select({ state: alertTransitions.state, at: alertTransitions.at })
    .from(alertTransitions)
    .where(eq(alertTransitions.alertId, alertId))
    .orderBy(asc(alertTransitions.at), asc(alertTransitions.id));
  const deliveries = await db
    .select({
      channelId: notificationChannels.id,
      channelName: notificationChannels.name,
      channelKind: notificationChannels.kind,
      event: notificationDeliveries.event,
      status: notificationDeliveries.status,
      attempts: notificationDeliveries.attempts,
      lastError: notificationDeliveries.lastError,
      createdAt: notificationDeliveries.createdAt,
      deliveredAt: notificationDeliveries.deliveredAt,
    })
    .from(notificationDeliveries)
    .innerJoin(notificationChannels, eq(notificationChannels.id, notificationDeliveries.channelId))
    .where(and(eq(notificationDeliveries.alertId, alertId), eq(notificationDeliveries.ownerId, owner.id)))
    .orderBy(asc(notificationDeliveries.id));
  return {
    alert: view(row),
    history,
    deliveries: deliveries.map(
      (d): AlertDeliveryView => ({
        ...d,
        // A one-shot alert's notice is its firing notice.
        event: d.event === "resolved" ? "resolved" : row.state === "notified" ? "notified" : "firing",
        lastError: displaySafe((d.lastError ?? "").slice(0, LAST_ERROR_MAX)),
        deliveredAt: d.deliveredAt ?? undefined,
      }),
    ),
  };
}
