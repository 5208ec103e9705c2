import { type Column, inArray, type SQL, sql } from "drizzle-orm";
import { servers } from "../../db/schema.js";
import { type Role, roles } from "../kernel/kinds.js";
import type { Owner } from "./owners.js";

/**
 * What a caller may see of its owner's fleet: every cluster, or only those its token is limited
 * to. Out of scope is not found, exactly like another owner's id: the conditions below join the
 * owner condition in each owner-scoped query, so nothing is fetched first and filtered after.
 */
export type OwnerScope = Pick<Owner, "id" | "clusterIds">;

/** True when a caller holding `held` may do what `needed` allows (roles are ordered weakest first). */
export const roleAtLeast = (held: Role, needed: Role): boolean => roles.indexOf(held) >= roles.indexOf(needed);

/** Rows whose cluster (`clusterId`, a cluster id column) is within the caller's clusters; undefined when unlimited. */
export function withinClusters(scope: OwnerScope, clusterId: Column): SQL | undefined {
  if (!scope.clusterIds) return undefined;
  if (scope.clusterIds.length === 0) return sql`false`;
  return inArray(clusterId, [...scope.clusterIds]);
}

/** Rows whose server (`serverId`, a server id column) is in one of the caller's clusters; undefined when unlimited. */
export function withinClustersByServer(scope: OwnerScope, serverId: Column): SQL | undefined {
  const inside = withinClusters(scope, servers.clusterId);
  if (!inside) return undefined;
  return sql`${serverId} in (select ${servers.id} from ${servers} where ${inside})`;
}
