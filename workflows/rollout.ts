import { ApplicationFailure, WorkflowExecutionAlreadyStartedError } from "@temporalio/common";
import {
  allHandlersFinished,
  CancellationScope,
  ChildWorkflowCancellationType,
  condition,
  continueAsNew,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
} from "@temporalio/workflow";
import type { Activities } from "../activities/index.js";
import type { OperationKind, RolloutServerState, RolloutStatus } from "../core/kernel/kinds.js";
import { counted } from "../core/kernel/plural.js";
import type { OpenedChild } from "../core/rollouts/rollouts.js";
import {
  clusterIdAttribute,
  operationAttribute,
  ownerIdAttribute,
  rolloutIdAttribute,
  serverIdAttribute,
  serverNameAttribute,
  workflowRole,
} from "../temporal/search-attributes.js";
import type { ConnectionTestResult } from "./definitions.js";
import { FailureType } from "./failure-types.js";
import { type OperationWorkflow, operationWorkflow } from "./operation-workflows.js";
import {
  abortRolloutUpdate,
  childOperation,
  pauseRolloutUpdate,
  type RolloutChildProgress,
  type RolloutInput,
  type RolloutProgress,
  type RolloutResult,
  resumeRolloutUpdate,
  rolloutProgressQuery,
} from "./rollout-definitions.js";

/** Database steps of a rollout: local activities, retried until the database answers. */
const db = proxyLocalActivities<Activities>({
  startToCloseTimeout: "2 minutes",
  retry: { initialInterval: "1 second", maximumInterval: "10 seconds" },
});

/** Opening a chunk of operations (up to OPEN_CHUNK transactions) may outlast a workflow task: a regular activity. */
const opening = proxyActivities<Activities>({
  startToCloseTimeout: "10 minutes",
  retry: { initialInterval: "1 second", maximumInterval: "10 seconds" },
});

/** Children in flight at most: the rest of a run's servers start as others end. */
const DEFAULT_WINDOW = 200;
/** Servers one run operates before it continues as new: each adds about 8 events to its history. */
const SERVERS_PER_RUN = 400;
/**
 * Operations opened per activity, their children started in one activation: on an overloaded
 * worker a 200-child activation ran past Temporal's 2 s deadlock detector.
 */
const OPEN_CHUNK = 50;
/** The rollout's reason when its workflow is cancelled from Temporal (Web UI, `temporal workflow cancel`) rather than by AbortRollout. */
export const CANCELLED_FROM_TEMPORAL = "the rollout workflow was cancelled (a Temporal cancellation request, not AbortRollout)";
export const ROLLOUT_ALREADY_ENDED = "the rollout had already ended when this run started: nothing was done";
/** Runs that reach their end from here on fail when the rollout failed or was aborted; older histories completed with the status in the result. */
const ENDS_AS_FAILURE = "rollout-run-fails-when-the-rollout-does";
/** A busy server is tried again after 2 s, then less and less often, at most once a minute. */
const BUSY_RETRY_FIRST_MS = 2_000;
const BUSY_RETRY_MAX_MS = 60_000;

/**
 * A rollout (`rollout/<id>`): its servers in batches, each server's existing
 * operation workflow as a child (its operation row linked to the rollout, the
 * one-operation-per-server rule kept by that row). Each run operates at most
 * SERVERS_PER_RUN servers of a batch, at most `windowSize` children at once (the
 * next start as others end), then continues as new, so each run's history is
 * bounded whatever the fleet's size. Once the failure budget is spent no other
 * child starts; pause takes effect before the next batch; abort cancels the running
 * children (each records CANCELLED once its step has stopped) and starts no other.
 * A cancellation request on the workflow itself is an abort too: the children's
 * scope inherits it, the database steps run in non-cancellable scopes, and the
 * run ends cancelled once its row is ABORTED.
 */
export async function rolloutWorkflow(input: RolloutInput): Promise<RolloutResult> {
  const windowSize = input.windowSize ?? DEFAULT_WINDOW;
  const batch = input.batch ?? 0;
  const { kind: operationKind, options: childOptions } = childOperation(input.kind);
  const state = {
    status: (input.paused ? "PAUSED" : "RUNNING") as RolloutStatus,
    reason: input.pauseReason ?? "",
    aborting: false,
    ended: false,
  };
  const window: RolloutChildProgress[] = [];
  // Created in the root scope: a cancellation of the workflow cancels the children as an abort does.
  const children = new CancellationScope();
  const root = CancellationScope.current();
  let cancelledBy: unknown;
  /** Aborted by the owner, or cancelled from Temporal (noted here, so every check below sees one flag). */
  const stopping = (): boolean => {
    if (!state.aborting && root.consideredCancelled) {
      state.aborting = true;
      state.reason = CANCELLED_FROM_TEMPORAL;
    }
    return state.aborting;
  };
  root.cancelRequested.catch((error) => {
    cancelledBy = error;
    stopping();
  });
  /** Database steps must finish even while the workflow is being cancelled. */
  const settled = <T>(step: () => Promise<T>): Promise<T> => CancellationScope.nonCancellable(step);
  const setServerState = (position: number, serverState: RolloutServerState, reason: string) =>
    settled(() => db.setRolloutServerState({ rolloutId: input.rolloutId, positions: [position], state: serverState, reason }));
  const snapshot = (): RolloutProgress => ({
    rolloutId: input.rolloutId,
    status: state.status,
    batch,
    batchCount: input.batchCount,
    reason: state.reason,
    window: window.map((w) => ({ ...w })),
  });
  const ended = () => state.ended || stopping();

  setHandler(rolloutProgressQuery, snapshot);
  setHandler(
    pauseRolloutUpdate,
    async ({ reason }) => {
      state.status = "PAUSED";
      state.reason = reason || "paused by the owner";
      await db.setRolloutStatus({ rolloutId: input.rolloutId, status: "PAUSED", reason: state.reason });
      return snapshot();
    },
    {
      validator: (_request) => {
        if (ended()) throw new Error(`rollout ${input.rolloutId} has ended: nothing to pause`);
        if (state.status === "PAUSED") throw new Error(`rollout ${input.rolloutId} is already paused`);
      },
    },
  );
  setHandler(
    resumeRolloutUpdate,
    async () => {
      state.status = "RUNNING";
      state.reason = "";
      await db.setRolloutStatus({ rolloutId: input.rolloutId, status: "RUNNING", reason: "" });
      return snapshot();
    },
    {
      validator: () => {
        if (ended()) throw new Error(`rollout ${input.rolloutId} has ended: nothing to resume`);
        if (state.status !== "PAUSED") throw new Error(`rollout ${input.rolloutId} is not paused`);
      },
    },
  );
  setHandler(
    abortRolloutUpdate,
    async ({ reason }) => {
      state.aborting = true;
      state.reason = reason || "aborted by the owner";
      children.cancel();
      await settled(() => condition(() => state.ended));
      return snapshot();
    },
    {
      validator: (_request) => {
        if (ended()) throw new Error(`rollout ${input.rolloutId} has ended: nothing to abort`);
      },
    },
  );

  const finish = (status: RolloutStatus, reason: string): Promise<RolloutResult> =>
    settled(async () => {
      state.status = status;
      state.reason = reason;
      await db.setRolloutStatus({ rolloutId: input.rolloutId, status, reason });
      state.ended = true;
      await condition(allHandlersFinished);
      return { status, reason };
    }).then(endRun);
  /**
   * Once the row holds the end: a failed or aborted rollout fails its run, non-retryable (red in the
   * Web UI, where COMPLETED would read as green); the result rides in the failure's details.
   */
  const endRun = (result: RolloutResult): RolloutResult => {
    if (result.status === "SUCCEEDED" || cancelledBy !== undefined || !patched(ENDS_AS_FAILURE)) return result;
    throw ApplicationFailure.create({
      type: result.status === "ABORTED" ? FailureType.RolloutAborted : FailureType.RolloutFailed,
      message: `rollout ${input.rolloutId} ${result.status}${result.reason ? `: ${result.reason}` : ""}`,
      nonRetryable: true,
      details: [result],
    });
  };
  const aborted = async (): Promise<RolloutResult> => {
    const result = await finish("ABORTED", state.reason);
    // Cancelled from Temporal: the run ends cancelled there too, once the row says ABORTED.
    if (cancelledBy !== undefined) throw cancelledBy;
    return result;
  };

  if (state.status === "PAUSED") await settled(() => condition(() => state.status !== "PAUSED" || stopping()));
  if (stopping()) return aborted();
  if (!(await settled(() => db.setRolloutStatus({ rolloutId: input.rolloutId, currentBatch: batch })))) {
    // The row ended without this run (the reconciler found no workflow while its start was on the way): do nothing.
    state.ended = true;
    return { status: "FAILED", reason: ROLLOUT_ALREADY_ENDED };
  }

  const pending = await settled(() => db.rolloutPendingOfBatch({ rolloutId: input.rolloutId, batch, limit: SERVERS_PER_RUN }));
  for (const p of pending) window.push({ position: p.position, serverId: p.serverId ?? undefined, state: "pending" });
  const started = pending.length > 0 ? await runWindow() : 0;
  if (stopping()) return aborted();

  const batchDone = pending.length < SERVERS_PER_RUN && started === pending.length;
  const counts = await settled(() =>
    batchDone
      ? db.recordRolloutBatchFinished({ rolloutId: input.rolloutId, batch, batchCount: input.batchCount })
      : db.rolloutCounts({ rolloutId: input.rolloutId }),
  );
  const lastBatch = batch + 1 >= input.batchCount;
  if (counts.failed >= input.failureBudget) {
    const untouched = counts.pending;
    return finish(
      "FAILED",
      `${counts.failed} of ${counted(counts.total, "server")} failed (max failures ${input.failureBudget}): stopped after batch ${batch + 1} of ${input.batchCount}` +
        (untouched > 0 ? `; ${counted(untouched, "server")} not touched` : ""),
    );
  }
  if (batchDone && lastBatch) {
    return finish("SUCCEEDED", counts.failed > 0 ? `${counted(counts.failed, "server")} failed (max failures ${input.failureBudget})` : "");
  }
  if (batchDone) {
    if (batch === 0 && input.hasCanary && input.pauseAfterCanary && state.status !== "PAUSED") {
      state.status = "PAUSED";
      state.reason = "paused after the canary: ResumeRollout continues";
      await settled(() => db.setRolloutStatus({ rolloutId: input.rolloutId, status: "PAUSED", reason: state.reason }));
    }
    if (input.batchPauseSeconds > 0) await settled(() => condition(stopping, input.batchPauseSeconds * 1000));
    await settled(() => condition(() => state.status !== "PAUSED" || stopping()));
    if (stopping()) return aborted();
  }
  // An abort's handler waits for the end: let it in rather than wait for it.
  await settled(() => condition(() => allHandlersFinished() || stopping()));
  if (stopping()) return aborted();
  return continueAsNew<typeof rolloutWorkflow>({
    ...input,
    batch: batchDone ? batch + 1 : batch,
    paused: state.status === "PAUSED",
    pauseReason: state.status === "PAUSED" ? state.reason : undefined,
  });

  /**
   * This run's servers, at most `windowSize` children in flight: operations opened OPEN_CHUNK at a
   * time, topped up as children end; no start once the failure budget is spent or on abort.
   * Answers how many servers were started.
   */
  async function runWindow(): Promise<number> {
    // A run starts below the budget: what earlier runs spent matters from its second chunk on.
    const failedBefore =
      pending.length > Math.min(OPEN_CHUNK, windowSize)
        ? (await settled(() => db.rolloutCounts({ rolloutId: input.rolloutId }))).failed
        : 0;
    let failed = 0;
    let active = 0;
    let next = 0;
    const stopStarting = () => stopping() || failedBefore + failed >= input.failureBudget;
    const ends: Promise<void>[] = [];
    while (next < pending.length) {
      const chunk = Math.min(OPEN_CHUNK, windowSize, pending.length - next);
      await settled(() => condition(() => windowSize - active >= chunk || stopStarting()));
      if (stopStarting()) break;
      const servers = window.slice(next, next + chunk);
      next += chunk;
      active += chunk;
      const opened = await settled(() =>
        opening.openRolloutChildren({
          rolloutId: input.rolloutId,
          positions: servers.map((w) => w.position),
          kind: operationKind,
        }),
      );
      for (const [i, child] of opened.entries()) {
        ends.push(
          runChild(child, servers[i] as RolloutChildProgress).then((end) => {
            active--;
            if (end === "FAILED") failed++;
          }),
        );
      }
    }
    await Promise.all(ends);
    return next;
  }

  /** One server: wait for it if it is busy and the strategy says so, run its operation as a child, record how it ended. */
  async function runChild(first: OpenedChild, progress: RolloutChildProgress): Promise<RolloutServerState | undefined> {
    let child = first;
    if (!child.opened && child.busy && input.busyPolicy === "wait") {
      progress.state = "waiting";
      await setServerState(child.position, "WAITING", child.reason);
      const deadline = Date.now() + input.busyWaitSeconds * 1000;
      let delay = BUSY_RETRY_FIRST_MS;
      while (!child.opened && child.busy && Date.now() < deadline && !stopping()) {
        try {
          await children.run(() => sleep(Math.min(delay, Math.max(1, deadline - Date.now()))));
        } catch (error) {
          if (!isCancellation(error)) throw error;
          break;
        }
        delay = Math.min(delay * 2, BUSY_RETRY_MAX_MS);
        [child] = (await settled(() =>
          opening.openRolloutChildren({
            rolloutId: input.rolloutId,
            positions: [child.position],
            kind: operationKind,
          }),
        )) as [OpenedChild];
      }
      if (!child.opened && stopping()) {
        // Never touched: back to pending, as the rest of an aborted rollout.
        await setServerState(child.position, "PENDING", "");
        progress.state = "pending";
        return;
      }
      if (!child.opened && child.busy) {
        await setServerState(child.position, "FAILED", `still busy after ${input.busyWaitSeconds} s: ${child.reason}`);
        progress.state = "ended";
        return "FAILED";
      }
    }
    if (!child.opened) {
      await setServerState(child.position, "SKIPPED", child.reason);
      progress.state = "ended";
      return;
    }
    const opened = child;
    progress.state = "running";
    progress.operationId = opened.operationId;
    progress.workflowId = opened.workflowId;
    let testOutcome: ConnectionTestResult | undefined;
    try {
      const result = await startWithRetry(opened, operationKind);
      if (operationKind === "test_connection") testOutcome = result as ConnectionTestResult;
    } catch (error) {
      // The child recorded its own end on its operation row (failed or cancelled); a start that never happened is recorded here.
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        await settled(() =>
          db.finishOperation({ operationId: opened.operationId, status: "FAILED", error: "the workflow could not be started" }),
        );
      }
    }
    const end = await settled(() =>
      db.finishRolloutChild({
        rolloutId: input.rolloutId,
        position: opened.position,
        testOutcome: testOutcome && { outcome: testOutcome.outcome, message: testOutcome.message },
      }),
    );
    progress.state = "ended";
    return end;
  }

  /** A previous run of a per-server workflow id may still be closing (its row ended first): wait a little, then start. */
  async function startWithRetry(opened: Extract<OpenedChild, { opened: true }>, kind: OperationKind): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await children.run(() =>
          executeChild(operationWorkflow(kind) as OperationWorkflow<typeof kind>, {
            workflowId: opened.workflowId,
            args: [{ operationId: opened.operationId, serverId: opened.serverId, ...childOptions }] as never,
            parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
            cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
            workflowIdReusePolicy: "ALLOW_DUPLICATE",
            staticSummary: opened.summary,
            staticDetails: opened.details,
            typedSearchAttributes: [
              { key: serverIdAttribute, value: opened.serverId },
              { key: clusterIdAttribute, value: opened.clusterId },
              { key: ownerIdAttribute, value: opened.ownerId },
              { key: operationAttribute, value: kind },
              { key: rolloutIdAttribute, value: input.rolloutId },
              workflowRole("operation"),
              ...(opened.serverName === undefined ? [] : [{ key: serverNameAttribute, value: opened.serverName }]),
            ],
          }),
        );
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError) || attempt >= 5 || stopping()) throw error;
        await sleep(2_000 * (attempt + 1));
      }
    }
  }
}
