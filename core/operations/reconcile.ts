import { type Client, WorkflowFailedError, WorkflowNotFoundError } from "@temporalio/client";
import { and, asc, desc, eq, inArray, ne, notExists, sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { operations, servers } from "../../db/schema.js";
import { progressQuery, type RolloutResult, type StepProgress } from "../../workflows/contract.js";
import { recordAudit } from "../audit/record.js";
import { setServerStatus } from "../inventory/server-status.js";
import { busyStatuses, type EndedRolloutStatus, endedRolloutStatuses, type OperationStatus, type RolloutStatus } from "../kernel/kinds.js";
import { errorSummary, log } from "../kernel/log.js";
import { settleClosedRollout, unendedRollouts } from "../rollouts/rollouts.js";
import { finishOperation, isOperationEnded, type OperationRow, setOperationRunId } from "./operations.js";

/**
 * Operations and workflows agree: what Temporal says about an operation's
 * workflow decides how its row ends. Used when a start fails or times out (ask,
 * do not guess), by CancelOperation on a workflow that already ended, and by
 * the reconciler schedule for rows whose workflow closed without recording its
 * end (terminated from the Web UI, a starter that died before the start).
 */

export type WorkflowState =
  | { state: "running"; runId: string }
  | { state: "closed"; runId: string; status: Exclude<OperationStatus, "RUNNING">; error?: string }
  | { state: "missing" };

/** Rows with no workflow found are ended only after this long: their start may still be on its way. */
export const DEFAULT_MISSING_GRACE_MS = 60_000;

const innermost = (error: unknown): string => {
  let e = error as { message?: string; cause?: unknown } | undefined;
  while (e?.cause) e = e.cause as typeof e;
  return e?.message ?? String(error);
};

/** The operation id a run was started for: its first argument, from the first event of its history. */
async function startedForOperation(client: Client, workflowId: string, runId: string): Promise<string | undefined> {
  const response = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    maximumPageSize: 1,
  });
  const payload = response.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) return undefined;
  const input = client.options.loadedDataConverter.payloadConverter.fromPayload(payload) as { operationId?: unknown } | undefined;
  return typeof input?.operationId === "string" ? input.operationId : undefined;
}

/** How a closed run ended, in the words the rows use. */
export type ClosedRun =
  | { as: "completed"; result: () => Promise<unknown> }
  | { as: "cancelled"; error: string }
  | { as: "failed"; error: string };

type RunState = { state: "missing" } | { state: "running"; runId: string } | { state: "closed"; runId: string; temporalStatus: string };

/** The latest run of `workflowId` (or run `runId`): missing, running (continued-as-new counts as running), or closed. */
async function describeRun(client: Client, workflowId: string, runId?: string): Promise<RunState> {
  let description: Awaited<ReturnType<ReturnType<Client["workflow"]["getHandle"]>["describe"]>>;
  try {
    description = await client.workflow.getHandle(workflowId, runId).describe();
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return { state: "missing" };
    throw error;
  }
  const status = description.status.name;
  if (status === "RUNNING" || status === "CONTINUED_AS_NEW") return { state: "running", runId: description.runId };
  return { state: "closed", runId: description.runId, temporalStatus: status };
}

/** What a closed run's end was: its result, a cancellation, or why it failed (terminated, timed out, failed). */
async function closedRun(client: Client, workflowId: string, runId: string, temporalStatus: string): Promise<ClosedRun> {
  const outcome = () => client.workflow.getHandle(workflowId, runId).result();
  if (temporalStatus === "COMPLETED") return { as: "completed", result: outcome };
  if (temporalStatus === "CANCELLED") return { as: "cancelled", error: "cancelled" };
  if (temporalStatus === "TERMINATED") {
    const reason = await outcome().then(
      () => "",
      (error) => (error instanceof WorkflowFailedError ? innermost(error) : ""),
    );
    return { as: "failed", error: `the workflow was terminated${reason ? `: ${reason}` : ""}` };
  }
  if (temporalStatus === "TIMED_OUT") return { as: "failed", error: "the workflow timed out" };
  const failure = await outcome().then(
    () => "the workflow failed",
    (error) => innermost(error),
  );
  return { as: "failed", error: failure };
}

/** What Temporal knows about the workflow of `row`. A workflow id is reused by later operations: the run must be this row's. */
export async function describeOperationWorkflow(client: Client, row: OperationRow): Promise<WorkflowState> {
  const run = await describeRun(client, row.workflowId, row.runId ?? undefined);
  if (run.state === "missing") return run;
  if (!row.runId && (await startedForOperation(client, row.workflowId, run.runId)) !== row.id) return { state: "missing" };
  if (run.state === "running") return run;
  const closed = await closedRun(client, row.workflowId, run.runId, run.temporalStatus);
  if (closed.as === "completed") return { state: "closed", runId: run.runId, status: "SUCCEEDED" };
  return { state: "closed", runId: run.runId, status: closed.as === "cancelled" ? "CANCELLED" : "FAILED", error: closed.error };
}

/** The steps a closed run had got through (a worker answers the query by replaying its history); [] when none answers soon. */
async function lastSteps(client: Client, workflowId: string, runId: string): Promise<StepProgress[]> {
  const query = client.workflow
    .getHandle(workflowId, runId)
    .query(progressQuery)
    .then((p) => p.steps)
    .catch(() => []);
  return Promise.race([query, new Promise<StepProgress[]>((resolve) => setTimeout(() => resolve([]), 5000).unref())]);
}

/** The reconciler's change on record (core/audit/): the operation, its server and the status it set. */
async function recordSettled(db: Database, row: OperationRow, status: OperationStatus): Promise<void> {
  await recordAudit(db, {
    ownerId: row.ownerId,
    actor: { kind: "system", name: "reconciler" },
    action: "operation.settled",
    targetIds: [row.id, ...(row.serverId ? [row.serverId] : [])],
    detail: status,
    outcome: "ok",
  }).catch((error) => log.error("audit entry for a settled operation not recorded", { operationId: row.id, ...errorSummary(error) }));
}

/**
 * Brings one RUNNING row in line with its workflow: a closed workflow's
 * outcome is recorded, a missing one (after `missingGraceMs`) fails the row, a
 * running one gets its run id. Returns the state found.
 */
export async function settleOperation(
  db: Database,
  client: Client,
  row: OperationRow,
  options: { missingGraceMs?: number; now?: Date } = {},
): Promise<WorkflowState> {
  const found = await describeOperationWorkflow(client, row);
  if (found.state === "running") {
    if (!row.runId) await setOperationRunId(db, row.id, found.runId);
  } else if (found.state === "closed") {
    // The workflow records its own end before it closes: only a row still RUNNING needs the outcome from here.
    if (await isOperationEnded(db, row.id)) return found;
    const steps = await lastSteps(client, row.workflowId, found.runId);
    await finishOperation(db, row.id, {
      status: found.status,
      error: found.error,
      result: { workflowId: row.workflowId, reconciled: true, steps },
    });
    await recordSettled(db, row, found.status);
  } else {
    const age = (options.now ?? new Date()).getTime() - row.startedAt.getTime();
    if (age >= (options.missingGraceMs ?? DEFAULT_MISSING_GRACE_MS)) {
      await finishOperation(db, row.id, {
        status: "FAILED",
        error: "the workflow was never started: the process starting it stopped before Temporal accepted it",
        result: { workflowId: row.workflowId, reconciled: true },
      });
      await recordSettled(db, row, "FAILED");
    }
  }
  return found;
}

export interface ReconcileReport {
  /** RUNNING rows looked at, and those ended here with the real outcome. */
  checked: number;
  settled: { operationId: string; status: OperationStatus }[];
  /** Servers moved out of PROVISIONING/REINSTALLING that no running operation owned. */
  repairedServers: string[];
  /** Rollouts whose workflow had closed without recording their end, ended here. */
  settledRollouts: { rolloutId: string; status: RolloutStatus }[];
}

/**
 * One reconciler pass (run by the `operations-reconciler` schedule): every
 * RUNNING row is checked against Temporal, then every
 * server left PROVISIONING or REINSTALLING with no running operation goes to
 * ERROR with a reason naming the operation that left it so, then every
 * rollout not ended whose workflow has closed is ended (`reconcileRollouts`).
 */
export async function reconcileOperations(
  db: Database,
  client: Client,
  options: { missingGraceMs?: number; limit?: number } = {},
): Promise<ReconcileReport> {
  const report: ReconcileReport = { checked: 0, settled: [], repairedServers: [], settledRollouts: [] };
  const rows = await db
    .select()
    .from(operations)
    .where(eq(operations.status, "RUNNING"))
    .orderBy(asc(operations.startedAt))
    .limit(options.limit ?? 1000);
  for (const row of rows) {
    report.checked += 1;
    await settleOperation(db, client, row, options);
    const [after] = await db.select({ status: operations.status }).from(operations).where(eq(operations.id, row.id));
    if (after && after.status !== "RUNNING") report.settled.push({ operationId: row.id, status: after.status });
  }
  const stranded = await db
    .select({ id: servers.id, status: servers.status })
    .from(servers)
    .where(
      and(
        inArray(servers.status, [...busyStatuses]),
        notExists(
          db
            .select({ one: sql`1` })
            .from(operations)
            .where(and(eq(operations.serverId, servers.id), eq(operations.status, "RUNNING"), ne(operations.kind, "test_connection"))),
        ),
      ),
    )
    .limit(options.limit ?? 1000);
  for (const server of stranded) {
    const [last] = await db
      .select()
      .from(operations)
      .where(and(eq(operations.serverId, server.id), ne(operations.kind, "test_connection")))
      .orderBy(desc(operations.startedAt))
      .limit(1);
    const what = last
      ? `the ${last.kind} operation ${last.id} ended ${last.status}${last.error ? ` (${last.error})` : ""}`
      : "no operation";
    const write = await setServerStatus(
      db,
      server.id,
      "ERROR",
      `left ${server.status} with no running operation: ${what}; it can be configured again`,
      { by: "reconciler" },
    );
    if (write.changed) report.repairedServers.push(server.id);
  }
  report.settledRollouts = await reconcileRollouts(db, client, options);
  return report;
}

type RolloutEnd = { status: EndedRolloutStatus; reason: string };

/**
 * How a rollout whose workflow closed really ended: the workflow's own result, cancelled = ABORTED,
 * anything else FAILED with why. (A run that fails as RolloutFailed or RolloutAborted has written
 * its row's end first: `settleClosedRollout` finds the row ended and leaves it.)
 */
async function rolloutEnd(closed: ClosedRun): Promise<RolloutEnd> {
  if (closed.as === "cancelled") return { status: "ABORTED", reason: "the rollout workflow was cancelled" };
  if (closed.as === "failed") return { status: "FAILED", reason: closed.error };
  const result = (await closed.result()) as RolloutResult | undefined;
  if (result && endedRolloutStatuses.includes(result.status))
    return { status: result.status as RolloutEnd["status"], reason: result.reason };
  return { status: "FAILED", reason: "the workflow completed without recording the rollout's end" };
}

/**
 * Rollouts RUNNING or PAUSED whose workflow (`rollout/<id>`, its latest run)
 * has closed: terminated from the Web UI, timed out, or failed, so nothing in
 * it recorded the end. Each is ended with what really happened
 * (`settleClosedRollout`); one whose workflow Temporal does not know is FAILED
 * after the grace period. A rollout whose children are still stopping is left
 * for the next pass.
 */
export async function reconcileRollouts(
  db: Database,
  client: Client,
  options: { missingGraceMs?: number; limit?: number; now?: Date } = {},
): Promise<{ rolloutId: string; status: RolloutStatus }[]> {
  const settled: { rolloutId: string; status: RolloutStatus }[] = [];
  for (const row of await unendedRollouts(db, options.limit ?? 1000)) {
    const run = await describeRun(client, row.workflowId);
    let end: RolloutEnd;
    if (run.state === "running") continue;
    if (run.state === "closed") end = await rolloutEnd(await closedRun(client, row.workflowId, run.runId, run.temporalStatus));
    else {
      const age = (options.now ?? new Date()).getTime() - row.startedAt.getTime();
      if (age < (options.missingGraceMs ?? DEFAULT_MISSING_GRACE_MS)) continue;
      end = { status: "FAILED", reason: "no workflow found: it was never started, or Temporal no longer keeps it" };
    }
    if (await settleClosedRollout(db, row.id, end)) settled.push({ rolloutId: row.id, status: end.status });
  }
  return settled;
}
