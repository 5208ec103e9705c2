import { WorkflowNotFoundError, WorkflowUpdateFailedError } from "@temporalio/client";
import type { TypedSearchAttributes } from "@temporalio/common";
import { and, eq } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { servers } from "../../db/schema.js";
import {
  clusterIdAttribute,
  operationAttribute,
  ownerIdAttribute,
  rolloutIdAttribute,
  workflowRole,
} from "../../temporal/search-attributes.js";
import {
  abortRolloutUpdate,
  fleetWorkflows,
  pauseRolloutUpdate,
  type RolloutInput,
  resumeRolloutUpdate,
} from "../../workflows/contract.js";
import { withinClusters } from "../inventory/owner-scope.js";
import type { Owner } from "../inventory/owners.js";
import { selectTargetServers } from "../inventory/server-selection.js";
import { AppError } from "../kernel/errors.js";
import { requireId } from "../kernel/ids.js";
import { endedRolloutStatuses, type RolloutKind } from "../kernel/kinds.js";
import { counted } from "../kernel/plural.js";
import { cleanText, parseInput } from "../kernel/validation.js";
import type { WorkflowGateway } from "../operations/provisioning.js";
import type { RolloutStepQueries } from "./rollout-step-queries.js";
import { cutBatches, failureBudget, normaliseStrategy, type RolloutStrategy, type StrategyInput } from "./rollout-strategy.js";
import {
  countStates,
  createRollout,
  type RolloutCounts,
  type RolloutRow,
  type RolloutServerView,
  requireRollout,
  rolloutCounts,
  rolloutServersOf,
  setRolloutStatus,
} from "./rollouts.js";

/** Starting, planning and steering rollouts: the use cases behind RolloutService. */

export interface RolloutTargetInput {
  clusterId: string;
  selector: string;
  serverIds: string[];
}

export interface RolloutRequest {
  kind?: RolloutKind;
  target?: RolloutTargetInput;
  strategy?: StrategyInput;
  diskThresholdPct?: number;
}

export interface ResolvedRollout {
  kind: RolloutKind;
  target: RolloutTargetInput;
  strategy: RolloutStrategy;
  diskThresholdPct?: number;
  batches: { id: string; name: string }[][];
  total: number;
  failureBudget: number;
}

const reasonField = z.object({ reason: cleanText(500) });

/** Validates a request and cuts its targets into batches; InvalidArgument naming the field, nothing written. */
export async function resolveRollout(db: Database, owner: Owner, request: RolloutRequest, maxServers: number): Promise<ResolvedRollout> {
  if (!request.kind) throw AppError.invalid("kind", "must be set");
  const target = request.target;
  if (!target || (!target.clusterId && !target.selector && target.serverIds.length === 0))
    throw AppError.invalid("target", "set cluster_id, selector or server_ids");
  if (target.serverIds.length > maxServers) throw AppError.invalid("target.server_ids", `at most ${maxServers} ids`);
  const ids = target.serverIds.map((id, i) => requireId(`target.server_ids[${i}]`, id));
  const duplicate = ids.findIndex((id, i) => ids.indexOf(id) !== i);
  if (duplicate >= 0) throw AppError.invalid(`target.server_ids[${duplicate}]`, "is listed twice");
  const threshold = request.diskThresholdPct ?? 0;
  if (!Number.isInteger(threshold) || threshold < 0 || threshold > 100)
    throw AppError.invalid("options.disk_threshold_percent", "must be between 0 and 100");
  const strategy = normaliseStrategy(request.strategy);

  let selected = await selectTargetServers(
    db,
    owner,
    { clusterId: target.clusterId || undefined, selector: target.selector || undefined },
    maxServers,
  );
  if (ids.length > 0) {
    const found = new Set(selected.map((s) => s.id));
    const missing = ids.findIndex((id) => !found.has(id));
    if (missing >= 0) {
      const id = ids[missing] as string;
      const [mine] = await db
        .select({ id: servers.id })
        .from(servers)
        .where(and(eq(servers.id, id), eq(servers.ownerId, owner.id), withinClusters(owner, servers.clusterId)));
      if (!mine) throw AppError.notFound("server", id);
      throw AppError.invalid(`target.server_ids[${missing}]`, `server ${id} is not in the target's cluster or does not match its selector`);
    }
    const wanted = new Set(ids);
    selected = selected.filter((s) => wanted.has(s.id));
  }
  if (selected.length === 0) throw new AppError("failed_precondition", "the target matches no server");
  const batches = cutBatches(
    strategy,
    selected.map((s) => ({ id: s.id, name: s.name })),
  );
  return {
    kind: request.kind,
    target: { clusterId: target.clusterId, selector: target.selector, serverIds: ids },
    strategy,
    diskThresholdPct: threshold || undefined,
    batches,
    total: selected.length,
    failureBudget: failureBudget(strategy, selected.length),
  };
}

/** The rollout's row and its servers, batch by batch. */
export function recordRollout(db: Database, owner: Owner, id: string, plan: ResolvedRollout): Promise<RolloutRow> {
  return createRollout(db, {
    id,
    ownerId: owner.id,
    kind: plan.kind,
    target: { ...plan.target },
    strategy: { ...plan.strategy },
    options: plan.diskThresholdPct ? { diskThresholdPct: plan.diskThresholdPct } : {},
    servers: plan.batches.flatMap((batch, b) => batch.map((s) => ({ ...s, batch: b }))),
    batchCount: plan.batches.length,
  });
}

/** The rollout workflow's first input for a resolved rollout. */
export function rolloutInput(id: string, plan: ResolvedRollout): RolloutInput {
  return {
    rolloutId: id,
    kind: plan.kind,
    diskThresholdPct: plan.diskThresholdPct,
    total: plan.total,
    batchCount: plan.batches.length,
    hasCanary: plan.strategy.canarySize > 0,
    failureBudget: plan.failureBudget,
    batchPauseSeconds: plan.strategy.batchPauseSeconds,
    pauseAfterCanary: plan.strategy.pauseAfterCanary,
    busyPolicy: plan.strategy.busyPolicy,
    busyWaitSeconds: plan.strategy.busyWaitSeconds,
  };
}

/** Records the rollout and starts its workflow; a start that fails leaves the rollout FAILED, never RUNNING without a workflow. */
export async function startRollout(
  db: Database,
  gateway: WorkflowGateway,
  owner: Owner,
  request: RolloutRequest,
  maxServers: number,
  /** Runs once the targets are known, before anything is written or started: throws to refuse (a budget). */
  admit: (plan: ResolvedRollout) => void = () => {},
): Promise<RolloutRow> {
  const plan = await resolveRollout(db, owner, request, maxServers);
  admit(plan);
  const id = newId();
  const row = await recordRollout(db, owner, id, plan);
  const attributes = [
    { key: rolloutIdAttribute, value: id },
    { key: ownerIdAttribute, value: owner.id },
    { key: operationAttribute, value: "rollout" },
    workflowRole("rollout"),
    ...(plan.target.clusterId ? [{ key: clusterIdAttribute, value: plan.target.clusterId }] : []),
  ];
  try {
    await gateway.client.workflow.start(fleetWorkflows.rollout, {
      workflowId: row.workflowId,
      taskQueue: gateway.taskQueue,
      args: [rolloutInput(id, plan)],
      workflowIdConflictPolicy: "FAIL",
      typedSearchAttributes: attributes as unknown as TypedSearchAttributes,
      staticSummary: `${plan.kind.replaceAll("_", " ")} rollout over ${counted(plan.total, "server")} in ${counted(plan.batches.length, "batch")}`,
    });
  } catch (error) {
    await setRolloutStatus(db, id, { status: "FAILED", reason: "the workflow could not be started" });
    throw new AppError("unavailable", `the rollout workflow could not be started: rollout ${id} is FAILED`, { cause: error });
  }
  return row;
}

export type RolloutAction = "pause" | "resume" | "abort";

/**
 * Pause, resume or abort through the workflow's updates. A rollout that has
 * ended, or an update its validator rejects (already paused, not paused), is
 * FailedPrecondition with the reason; never a silent no-op.
 */
export async function steerRollout(
  db: Database,
  gateway: WorkflowGateway,
  owner: Owner,
  id: string,
  action: RolloutAction,
  reason = "",
): Promise<RolloutRow> {
  const text = parseInput(reasonField, { reason }).reason;
  const row = await requireRollout(db, owner, id);
  const ended = (r: RolloutRow) => new AppError("failed_precondition", `rollout ${r.id} has ended (${r.status}): nothing to ${action}`);
  if (endedRolloutStatuses.includes(row.status)) throw ended(row);
  const handle = gateway.client.workflow.getHandle(row.workflowId);
  try {
    if (action === "pause") await handle.executeUpdate(pauseRolloutUpdate, { args: [{ reason: text }] });
    else if (action === "resume") await handle.executeUpdate(resumeRolloutUpdate, { args: [] });
    else await handle.executeUpdate(abortRolloutUpdate, { args: [{ reason: text }] });
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError) {
      throw new AppError("failed_precondition", error.cause?.message ?? error.message, { cause: error });
    }
    const now = await requireRollout(db, owner, id);
    if (error instanceof WorkflowNotFoundError || endedRolloutStatuses.includes(now.status)) throw ended(now);
    throw error;
  }
  return requireRollout(db, owner, id);
}

export interface RolloutServerStatus extends RolloutServerView {
  currentStep?: string;
}

export interface RolloutDetail {
  row: RolloutRow;
  counts: RolloutCounts;
  servers?: RolloutServerStatus[];
}

/** Running servers whose current step is asked of their workflow per read; the others show their state only. */
const MAX_STEP_QUERIES = 20;

/** The rollout with counts, and with servers (their current step from their workflow's progress query, shared per rollout). */
export async function rolloutDetail(
  db: Database,
  steps: RolloutStepQueries | undefined,
  row: RolloutRow,
  withServers: boolean,
): Promise<RolloutDetail> {
  if (!withServers) return { row, counts: await rolloutCounts(db, row.id) };
  const list = await rolloutServersOf(db, row.id);
  const counts = countStates(list.map((s) => s.state));
  const running = list
    .filter((s) => s.state === "RUNNING" && s.workflowId)
    .slice(0, MAX_STEP_QUERIES)
    .map((s) => ({ position: s.position, workflowId: s.workflowId as string, runId: s.runId }));
  const current = steps ? await steps.stepsOf(row.ownerId, row.id, running) : new Map<number, string>();
  return { row, counts, servers: list.map((s) => ({ ...s, currentStep: current.get(s.position) })) };
}
