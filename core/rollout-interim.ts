import { and, asc, eq } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { type ServerStatus, servers } from "../db/schema.js";
import { requireCluster } from "./clusters.js";
import { AppError } from "./errors.js";

/**
 * TEMPORARY, until branch `sel` (label selectors, core/server-selection.ts) is
 * merged: the same signature, cluster only. Deleted on that merge.
 */
export async function selectTargetServers(
  db: Database,
  ownerId: string,
  target: { clusterId?: string; selector?: string; statuses?: ServerStatus[] },
  max: number,
): Promise<{ id: string; name: string; status: string }[]> {
  if (target.selector) throw new AppError("unavailable", "target.selector: label selectors are not available on this build yet");
  const conditions = [eq(servers.ownerId, ownerId)];
  if (target.clusterId) {
    const cluster = await requireCluster(db, { id: ownerId, name: "" }, target.clusterId, "target.cluster_id");
    conditions.push(eq(servers.clusterId, cluster.id));
  }
  const rows = await db
    .select({ id: servers.id, name: servers.name, status: servers.status })
    .from(servers)
    .where(and(...conditions))
    .orderBy(asc(servers.name), asc(servers.id))
    .limit(max + 1);
  if (rows.length > max) throw AppError.invalid("target", `matches more than ${max} servers: narrow the cluster, statuses or selector`);
  return rows;
}
