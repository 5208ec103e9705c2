import { and, arrayContains, asc, eq, gt, gte, lt, type SQL } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { auditEvents } from "../../db/schema.js";
import type { AuditOutcome, SystemActorName } from "../kernel/kinds.js";
import { type PageRequest, toPage } from "../kernel/pagination.js";

export interface AuditFilter {
  /** A token, member, service account or agent id, a system actor's name, or an anonymous caller's address. */
  actor?: string;
  targetId?: string;
  action?: string;
  since?: Date;
  until?: Date;
  outcome?: AuditOutcome;
}

export type AuditEventRow = typeof auditEvents.$inferSelect;

/** One organization's entries, oldest first, filtered; a page at a time. */
export async function listAuditEvents(
  db: Database,
  ownerId: string,
  filter: AuditFilter,
  page: PageRequest,
): Promise<{ items: AuditEventRow[]; nextPageToken: string }> {
  const conditions: (SQL | undefined)[] = [eq(auditEvents.ownerId, ownerId)];
  if (filter.actor) {
    const actor = filter.actor;
    conditions.push(
      (["schedule", "monitor", "reconciler", "seed_queue", "worker"] as string[]).includes(actor)
        ? eq(auditEvents.actorName, actor as SystemActorName)
        : eq(auditEvents.actorId, actor),
    );
  }
  if (filter.targetId) conditions.push(arrayContains(auditEvents.targetIds, [filter.targetId]));
  if (filter.action) conditions.push(eq(auditEvents.action, filter.action));
  if (filter.since) conditions.push(gte(auditEvents.at, filter.since));
  if (filter.until) conditions.push(lt(auditEvents.at, filter.until));
  if (filter.outcome) conditions.push(eq(auditEvents.outcome, filter.outcome));
  if (page.afterId) conditions.push(gt(auditEvents.id, page.afterId));
  const rows = await db
    .select()
    .from(auditEvents)
    .where(and(...conditions))
    .orderBy(asc(auditEvents.id))
    .limit(page.pageSize + 1);
  return toPage(rows, page);
}
