import { and, asc, eq, inArray, type SQL } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { servers } from "../../db/schema.js";
import { AppError } from "../kernel/errors.js";
import { type ServerStatus, serverStatuses } from "../kernel/kinds.js";
import { requireCluster } from "./clusters.js";
import { parseSelector, selectorCondition } from "./label-selector.js";
import { type OwnerScope, withinClusters } from "./owner-scope.js";

/** Which of an owner's servers (within the caller's clusters): all of them when nothing is set; every field set must hold (and). */
export interface ServerTarget {
  clusterId?: string;
  /** Label selector (core/inventory/label-selector.ts); empty matches every server. */
  selector?: string;
  /** Any of these statuses; empty or absent: any status. */
  statuses?: ServerStatus[];
}

/**
 * The SQL conditions for an owner's servers matching `target`: the one
 * implementation behind ListServers and rollout targets. Fields in errors are
 * prefixed with `field` (`target.selector`); a cluster that is not the owner's
 * is NotFound, like every other RPC.
 */
export async function targetConditions(db: Database, owner: OwnerScope, target: ServerTarget, field = ""): Promise<SQL[]> {
  const named = (name: string) => (field === "" ? name : `${field}.${name}`);
  const conditions: SQL[] = [eq(servers.ownerId, owner.id)];
  const inside = withinClusters(owner, servers.clusterId);
  if (inside) conditions.push(inside);
  if (target.clusterId) {
    const cluster = await requireCluster(db, owner, target.clusterId, named("cluster_id"));
    conditions.push(eq(servers.clusterId, cluster.id));
  }
  const statuses = target.statuses ?? [];
  statuses.forEach((status, i) => {
    if (!serverStatuses.includes(status)) throw AppError.invalid(`${named("statuses")}[${i}]`, "is not a known server status");
  });
  if (statuses.length > 0) conditions.push(inArray(servers.status, [...new Set(statuses)]));
  const bySelector = selectorCondition(servers.labels, parseSelector(target.selector ?? "", named("selector")));
  if (bySelector) conditions.push(bySelector);
  return conditions;
}

/**
 * Every server of the owner matching `target`, ordered by name then id (so
 * batches cut from it are stable); InvalidArgument naming `target` when more
 * than `max` match.
 */
export async function selectTargetServers(
  db: Database,
  owner: OwnerScope,
  target: ServerTarget,
  max: number,
): Promise<{ id: string; name: string; status: string }[]> {
  const conditions = await targetConditions(db, owner, target, "target");
  const rows = await db
    .select({ id: servers.id, name: servers.name, status: servers.status })
    .from(servers)
    .where(and(...conditions))
    .orderBy(asc(servers.name), asc(servers.id))
    .limit(max + 1);
  if (rows.length > max) throw AppError.invalid("target", `matches more than ${max} servers: narrow the cluster, statuses or selector`);
  return rows;
}
