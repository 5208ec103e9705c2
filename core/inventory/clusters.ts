import { and, asc, count, eq, gt, inArray } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { clusters, servers } from "../../db/schema.js";
import { isForeignKeyViolation, isUniqueViolation } from "../kernel/db-errors.js";
import { AppError } from "../kernel/errors.js";
import { requireId } from "../kernel/ids.js";
import type { PageRequest } from "../kernel/pagination.js";
import { toPage } from "../kernel/pagination.js";
import { description, labels, parseInput, resourceName } from "../kernel/validation.js";
import { type OwnerScope, withinClusters } from "./owner-scope.js";
import type { Owner } from "./owners.js";

export type ClusterRow = typeof clusters.$inferSelect;
export interface ClusterView extends ClusterRow {
  serverCount: number;
}

const createSchema = z.object({ name: resourceName, description, labels });
const updateSchema = z.object({ name: resourceName.optional(), description: description.optional(), labels: labels.optional() });

function duplicateName(name: string): AppError {
  return new AppError("already_exists", `a cluster named "${name}" already exists`, { field: "name" });
}

async function withServerCounts(db: Database, rows: ClusterRow[]): Promise<ClusterView[]> {
  if (rows.length === 0) return [];
  const counts = await db
    .select({ clusterId: servers.clusterId, n: count() })
    .from(servers)
    .where(
      inArray(
        servers.clusterId,
        rows.map((r) => r.id),
      ),
    )
    .groupBy(servers.clusterId);
  const byCluster = new Map(counts.map((c) => [c.clusterId, c.n]));
  return rows.map((r) => ({ ...r, serverCount: byCluster.get(r.id) ?? 0 }));
}

/** The owner's cluster, or NotFound: another owner's id is indistinguishable from a missing one. */
export async function requireCluster(db: Database, owner: OwnerScope, id: string, field = "id"): Promise<ClusterRow> {
  const clusterId = requireId(field, id);
  const [row] = await db
    .select()
    .from(clusters)
    .where(and(eq(clusters.id, clusterId), eq(clusters.ownerId, owner.id), withinClusters(owner, clusters.id)));
  if (!row) throw AppError.notFound("cluster", clusterId);
  return row;
}

export async function createCluster(db: Database, owner: Owner, input: z.input<typeof createSchema>): Promise<ClusterView> {
  const data = parseInput(createSchema, input);
  // A new cluster would be outside the caller's own clusters: only an unlimited token makes one.
  if (owner.clusterIds) throw new AppError("permission_denied", "a token limited to clusters cannot create a cluster");
  try {
    const [row] = await db
      .insert(clusters)
      .values({ id: newId(), ownerId: owner.id, ...data })
      .returning();
    return { ...(row as ClusterRow), serverCount: 0 };
  } catch (error) {
    if (isUniqueViolation(error)) throw duplicateName(data.name);
    throw error;
  }
}

export async function updateCluster(db: Database, owner: Owner, id: string, input: z.input<typeof updateSchema>): Promise<ClusterView> {
  const existing = await requireCluster(db, owner, id);
  const data = parseInput(updateSchema, input);
  try {
    const [row] = await db
      .update(clusters)
      .set({ ...data, updatedAt: new Date() })
      .where(and(eq(clusters.id, existing.id), eq(clusters.ownerId, owner.id)))
      .returning();
    if (!row) throw AppError.notFound("cluster", existing.id);
    const [view] = await withServerCounts(db, [row]);
    return view as ClusterView;
  } catch (error) {
    if (isUniqueViolation(error)) throw duplicateName(data.name ?? "");
    throw error;
  }
}

export async function deleteCluster(db: Database, owner: Owner, id: string): Promise<void> {
  const existing = await requireCluster(db, owner, id);
  const [members] = await db.select({ n: count() }).from(servers).where(eq(servers.clusterId, existing.id));
  const refuse = (n: number) =>
    new AppError("failed_precondition", `cluster ${existing.id} still has ${n} server(s); delete or move them first`);
  if (members && members.n > 0) throw refuse(members.n);
  try {
    await db.delete(clusters).where(and(eq(clusters.id, existing.id), eq(clusters.ownerId, owner.id)));
  } catch (error) {
    // A server added between the count and the delete: the foreign key keeps the cluster.
    if (isForeignKeyViolation(error)) throw refuse(1);
    throw error;
  }
}

export async function getCluster(db: Database, owner: Owner, id: string): Promise<ClusterView> {
  const [view] = await withServerCounts(db, [await requireCluster(db, owner, id)]);
  return view as ClusterView;
}

export async function listClusters(db: Database, owner: Owner, page: PageRequest) {
  const rows = await db
    .select()
    .from(clusters)
    .where(
      and(eq(clusters.ownerId, owner.id), withinClusters(owner, clusters.id), page.afterId ? gt(clusters.id, page.afterId) : undefined),
    )
    .orderBy(asc(clusters.id))
    .limit(page.pageSize + 1);
  const { items, nextPageToken } = toPage(rows, page);
  return { items: await withServerCounts(db, items), nextPageToken };
}
