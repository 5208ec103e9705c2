import { randomUUID } from "node:crypto";
import type { TypedSearchAttributes } from "@temporalio/common";
import { and, eq, inArray } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { servers } from "../../db/schema.js";
import { ownerIdAttribute, workflowRole } from "../../temporal/search-attributes.js";
import { fleetWorkflows, type PlanResult } from "../../workflows/contract.js";
import { withinClusters } from "../inventory/owner-scope.js";
import type { Owner } from "../inventory/owners.js";
import { AppError } from "../kernel/errors.js";
import { requireId } from "../kernel/ids.js";
import { type RolloutKind, rolloutKinds } from "../kernel/kinds.js";
import type { WorkflowGateway } from "./provisioning.js";

/**
 * The most servers one plan checks: its result is one workflow payload (about
 * 1 KB per server for a configure plan; Temporal refuses payloads over 2 MB).
 * A larger fleet is planned in several calls (a rollout: per batch).
 */
export const MAX_PLAN_SERVERS = 1000;

export interface PlanDeps {
  db: Database;
  workflows: WorkflowGateway;
}

/**
 * Plans `kind` on an owner's servers (check mode, read-only on every host):
 * checks every id is the owner's (InvalidArgument naming `kind` or
 * `server_ids`, NotFound for an id the owner has not), starts `plan/<uuid>`
 * and awaits it. The answer has one ServerPlan per id, in the order given.
 */
export async function runPlan(deps: PlanDeps, owner: Owner, kind: RolloutKind, serverIds: string[]): Promise<PlanResult> {
  if (!(rolloutKinds as readonly string[]).includes(kind)) throw AppError.invalid("kind", `must be one of ${rolloutKinds.join(", ")}`);
  if (serverIds.length === 0) throw AppError.invalid("server_ids", "must name at least one server");
  if (serverIds.length > MAX_PLAN_SERVERS) throw AppError.invalid("server_ids", `must name at most ${MAX_PLAN_SERVERS} servers`);
  const ids = serverIds.map((id) => requireId("server_ids", id));
  const unique = new Set(ids);
  if (unique.size !== ids.length) throw AppError.invalid("server_ids", `names ${ids.find((id, i) => ids.indexOf(id) !== i)} twice`);
  const owned = new Set<string>();
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await deps.db
      .select({ id: servers.id })
      .from(servers)
      .where(and(eq(servers.ownerId, owner.id), withinClusters(owner, servers.clusterId), inArray(servers.id, ids.slice(i, i + 500))));
    for (const row of rows) owned.add(row.id);
  }
  const missing = ids.find((id) => !owned.has(id));
  if (missing) throw AppError.notFound("server", missing);

  return deps.workflows.client.workflow.execute(fleetWorkflows.plan, {
    workflowId: `plan/${randomUUID()}`,
    taskQueue: deps.workflows.taskQueue,
    args: [{ kind, serverIds: ids }],
    typedSearchAttributes: [{ key: ownerIdAttribute, value: owner.id }, workflowRole("plan")] as unknown as TypedSearchAttributes,
    staticSummary: `${kind.replaceAll("_", " ")} plan of ${ids.length} server${ids.length === 1 ? "" : "s"}`,
  });
}
