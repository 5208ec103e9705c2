import { and, asc, desc, eq, inArray, isNotNull, isNull, lt, notInArray, sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { operations, outboxEvents, rolloutServers, rollouts, servers } from "../../db/schema.js";
import { type OwnerScope, withinClustersByServer } from "../inventory/owner-scope.js";
import type { Owner } from "../inventory/owners.js";
import { AppError } from "../kernel/errors.js";
import { requireId } from "../kernel/ids.js";
import {
  type EndedRolloutStatus,
  type EventType,
  endedRolloutStatuses,
  type OperationKind,
  type RolloutKind,
  type RolloutServerState,
  type RolloutStatus,
  unreachedRolloutServerStates,
} from "../kernel/kinds.js";
import { SERVER_EVENTS_TOPIC } from "../kernel/outbox.js";
import { type PageRequest, toPage } from "../kernel/pagination.js";
import { finishOperation, startRolloutOperation } from "../operations/operations.js";
import { operationWorkflowMetadata, shownName } from "../operations/workflow-summary.js";
import { failureBudget, type RolloutStrategy } from "./rollout-strategy.js";

/** Rollout rows and their servers: every SQL statement about rollouts. */

export type RolloutRow = typeof rollouts.$inferSelect;
export type RolloutServerRow = typeof rolloutServers.$inferSelect;
type Tx = Parameters<Parameters<Database["transaction"]>[0]>[0];

export function rolloutWorkflowId(rolloutId: string): string {
  return `rollout/${rolloutId}`;
}

/** Rollout events share the server events topic, keyed by the rollout id: one rollout's events keep their order. */
async function enqueueRolloutEvent(tx: Tx, rolloutId: string, type: EventType, payload: Record<string, unknown>): Promise<void> {
  await tx.insert(outboxEvents).values({
    id: newId(),
    topic: SERVER_EVENTS_TOPIC,
    key: rolloutId,
    type,
    payload: { rolloutId, ...payload, at: new Date().toISOString() },
  });
}

export interface NewRollout {
  id: string;
  ownerId: string;
  kind: RolloutKind;
  target: Record<string, unknown>;
  strategy: Record<string, unknown>;
  options: Record<string, unknown>;
  /** In rollout order, with their batch. */
  servers: { id: string; name: string; batch: number }[];
  batchCount: number;
}

/** The rollout row, one row per target server, and `rollout.started`, in one transaction. */
export async function createRollout(db: Database, input: NewRollout): Promise<RolloutRow> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(rollouts)
      .values({
        id: input.id,
        ownerId: input.ownerId,
        kind: input.kind,
        target: input.target,
        strategy: input.strategy,
        options: input.options,
        workflowId: rolloutWorkflowId(input.id),
        total: input.servers.length,
        batchCount: input.batchCount,
      })
      .returning();
    for (let at = 0; at < input.servers.length; at += 1000) {
      await tx.insert(rolloutServers).values(
        input.servers.slice(at, at + 1000).map((s, i) => ({
          rolloutId: input.id,
          position: at + i,
          serverId: s.id,
          serverName: s.name,
          batch: s.batch,
        })),
      );
    }
    await enqueueRolloutEvent(tx, input.id, "rollout.started", {
      kind: input.kind,
      total: input.servers.length,
      batches: input.batchCount,
      target: input.target,
    });
    return row as RolloutRow;
  });
}

/**
 * A rollout is within a limited caller's clusters when every server it holds is: one outside server
 * (or one deleted since, whose cluster is no longer known) hides it, as another owner's would be.
 */
function rolloutWithinClusters(scope: OwnerScope) {
  const inside = withinClustersByServer(scope, rolloutServers.serverId);
  if (!inside) return undefined;
  return sql`not exists (select 1 from ${rolloutServers} where ${rolloutServers.rolloutId} = ${rollouts.id} and (${rolloutServers.serverId} is null or not (${inside})))`;
}

export async function requireRollout(db: Database, owner: Owner, id: string, field = "id"): Promise<RolloutRow> {
  const rolloutId = requireId(field, id);
  const [row] = await db
    .select()
    .from(rollouts)
    .where(and(eq(rollouts.id, rolloutId), eq(rollouts.ownerId, owner.id), rolloutWithinClusters(owner)));
  if (!row) throw AppError.notFound("rollout", rolloutId);
  return row;
}

export async function getRolloutRow(db: Database, rolloutId: string): Promise<RolloutRow> {
  const [row] = await db.select().from(rollouts).where(eq(rollouts.id, rolloutId));
  if (!row) throw AppError.notFound("rollout", rolloutId);
  return row;
}

/** Newest first. */
export async function listRollouts(db: Database, owner: Owner, page: PageRequest, status?: RolloutStatus) {
  const rows = await db
    .select()
    .from(rollouts)
    .where(
      and(
        eq(rollouts.ownerId, owner.id),
        rolloutWithinClusters(owner),
        status ? eq(rollouts.status, status) : undefined,
        page.afterId ? lt(rollouts.id, page.afterId) : undefined,
      ),
    )
    .orderBy(desc(rollouts.id))
    .limit(page.pageSize + 1);
  return toPage(rows, page);
}

/**
 * A server's state as the rollout sees it: the recorded state, except that a
 * RUNNING server whose operation has ended takes the operation's end (the
 * rollout records it a moment later, or after a worker restart).
 */
const effectiveState = sql<RolloutServerState>`case when ${rolloutServers.state} = 'RUNNING' and ${operations.status} is not null and ${operations.status} <> 'RUNNING' then ${operations.status} else ${rolloutServers.state} end`;

export interface RolloutServerView {
  position: number;
  serverId: string | null;
  serverName: string;
  batch: number;
  state: RolloutServerState;
  operationId: string | null;
  reason: string;
  workflowId: string | null;
  runId: string | null;
  operationError: string | null;
}

/** Every target in rollout order, with its effective state. */
export async function rolloutServersOf(db: Database, rolloutId: string): Promise<RolloutServerView[]> {
  return db
    .select({
      position: rolloutServers.position,
      serverId: rolloutServers.serverId,
      serverName: rolloutServers.serverName,
      batch: rolloutServers.batch,
      state: effectiveState,
      operationId: rolloutServers.operationId,
      reason: rolloutServers.reason,
      workflowId: operations.workflowId,
      runId: operations.runId,
      operationError: operations.error,
    })
    .from(rolloutServers)
    .leftJoin(operations, eq(operations.id, rolloutServers.operationId))
    .where(eq(rolloutServers.rolloutId, rolloutId))
    .orderBy(asc(rolloutServers.position));
}

export type RolloutCounts = Record<Lowercase<RolloutServerState>, number> & { total: number };

export function emptyCounts(): RolloutCounts {
  return { total: 0, pending: 0, waiting: 0, running: 0, succeeded: 0, failed: 0, skipped: 0, cancelled: 0, not_reached: 0 };
}

export function countStates(states: Iterable<RolloutServerState>): RolloutCounts {
  const counts = emptyCounts();
  for (const state of states) {
    counts.total += 1;
    counts[state.toLowerCase() as Lowercase<RolloutServerState>] += 1;
  }
  return counts;
}

export async function rolloutCounts(db: Database, rolloutId: string): Promise<RolloutCounts> {
  const rows = await db
    .select({ state: effectiveState, n: sql<number>`count(*)::int` })
    .from(rolloutServers)
    .leftJoin(operations, eq(operations.id, rolloutServers.operationId))
    .where(eq(rolloutServers.rolloutId, rolloutId))
    .groupBy(effectiveState);
  const counts = emptyCounts();
  for (const row of rows) {
    const n = Number(row.n);
    counts.total += n;
    counts[row.state.toLowerCase() as Lowercase<RolloutServerState>] += n;
  }
  return counts;
}

/** The next servers of a batch nothing has been done to yet, in rollout order (a window of a large batch). */
export async function pendingOfBatch(
  db: Database,
  rolloutId: string,
  batch: number,
  limit: number,
): Promise<{ position: number; serverId: string | null }[]> {
  return db
    .select({ position: rolloutServers.position, serverId: rolloutServers.serverId })
    .from(rolloutServers)
    .where(
      and(
        eq(rolloutServers.rolloutId, rolloutId),
        eq(rolloutServers.batch, batch),
        eq(rolloutServers.state, "PENDING"),
        isNull(rolloutServers.operationId),
      ),
    )
    .orderBy(asc(rolloutServers.position))
    .limit(limit);
}

export type OpenedChild =
  | {
      position: number;
      opened: true;
      operationId: string;
      workflowId: string;
      serverId: string;
      clusterId: string;
      ownerId: string;
      /** The child's summary and details in the Temporal Web UI (details: absent from results recorded before they existed). */
      summary: string;
      details?: string;
      /** For the AxionServerName search attribute (absent from results recorded before it existed). */
      serverName?: string;
    }
  | { position: number; opened: false; busy: boolean; reason: string };

/**
 * Opens the operation of one rollout target (the one-operation-per-server
 * index decides whether it is busy) and links it. Idempotent: a target that
 * already has its operation gets that one back.
 */
export async function openRolloutChild(db: Database, rolloutId: string, position: number, kind: OperationKind): Promise<OpenedChild> {
  const [target] = await db
    .select({
      serverId: rolloutServers.serverId,
      operationId: rolloutServers.operationId,
      ownerId: rollouts.ownerId,
    })
    .from(rolloutServers)
    .innerJoin(rollouts, eq(rollouts.id, rolloutServers.rolloutId))
    .where(and(eq(rolloutServers.rolloutId, rolloutId), eq(rolloutServers.position, position)));
  if (!target?.serverId) return { position, opened: false, busy: false, reason: "the server was deleted" };
  const [server] = await db.select().from(servers).where(eq(servers.id, target.serverId));
  if (!server) return { position, opened: false, busy: false, reason: "the server was deleted" };
  const describe = (operationId: string, workflowId: string): OpenedChild => {
    const shown = operationWorkflowMetadata({ kind, operationId, server, rolloutId });
    return {
      position,
      opened: true,
      operationId,
      workflowId,
      serverId: server.id,
      clusterId: server.clusterId,
      ownerId: server.ownerId,
      summary: shown.staticSummary,
      details: shown.staticDetails,
      serverName: shownName(server.name),
    };
  };
  if (target.operationId) {
    const [existing] = await db.select().from(operations).where(eq(operations.id, target.operationId));
    if (existing) return describe(existing.id, existing.workflowId);
  }
  let operation: Awaited<ReturnType<typeof startRolloutOperation>>;
  try {
    operation = await startRolloutOperation(db, { id: rolloutId, ownerId: target.ownerId }, server.id, kind);
  } catch (error) {
    if (error instanceof AppError && error.kind === "failed_precondition")
      return { position, opened: false, busy: true, reason: error.message };
    if (error instanceof AppError && error.kind === "not_found")
      return { position, opened: false, busy: false, reason: "the server was deleted" };
    throw error;
  }
  const [linked] = await db
    .update(rolloutServers)
    .set({ operationId: operation.id, state: "RUNNING", reason: "" })
    .where(and(eq(rolloutServers.rolloutId, rolloutId), eq(rolloutServers.position, position), isNull(rolloutServers.operationId)))
    .returning({ position: rolloutServers.position });
  if (!linked) {
    // A retried activity whose first attempt linked another operation: this one never starts.
    await db
      .update(operations)
      .set({ status: "FAILED", error: "superseded by a retried rollout step", finishedAt: new Date() })
      .where(eq(operations.id, operation.id));
    return openRolloutChild(db, rolloutId, position, kind);
  }
  return describe(operation.id, operation.workflowId);
}

export async function setRolloutServerState(
  db: Database,
  rolloutId: string,
  positions: number[],
  state: RolloutServerState,
  reason = "",
): Promise<void> {
  if (positions.length === 0) return;
  await db
    .update(rolloutServers)
    .set({ state, reason })
    .where(and(eq(rolloutServers.rolloutId, rolloutId), inArray(rolloutServers.position, positions)));
}

/**
 * Records how a child ended, from its operation row (which the child finished
 * itself). A connection test that ran but did not get in counts as failed for
 * the rollout.
 */
export async function finishRolloutChild(
  db: Database,
  rolloutId: string,
  position: number,
  testOutcome?: { outcome: string; message: string },
): Promise<RolloutServerState> {
  const [row] = await db
    .select({ id: operations.id, status: operations.status, error: operations.error, runId: operations.runId })
    .from(rolloutServers)
    .innerJoin(operations, eq(operations.id, rolloutServers.operationId))
    .where(and(eq(rolloutServers.rolloutId, rolloutId), eq(rolloutServers.position, position)));
  if (row?.status === "RUNNING" && row.runId === null) {
    // Its workflow never claimed the row (the start was cancelled by an abort, or never happened): it never will.
    await finishOperation(db, row.id, { status: "CANCELLED", error: "cancelled before it started" });
    row.status = "CANCELLED";
    row.error = "cancelled before it started";
  }
  let state: RolloutServerState = row?.status && row.status !== "RUNNING" ? row.status : "FAILED";
  let reason = row?.error ?? (row ? "" : "no operation");
  if (state === "SUCCEEDED" && testOutcome && testOutcome.outcome !== "ok") {
    state = "FAILED";
    reason = `${testOutcome.outcome}: ${testOutcome.message}`;
  }
  await setRolloutServerState(db, rolloutId, [position], state, reason);
  return state;
}

/**
 * Status changes of a rollout that has not ended. A terminal one, in the same transaction, marks
 * the servers nothing was done to NOT_REACHED with why (`notReachedReason`) and writes its event.
 */
export async function setRolloutStatus(
  db: Database,
  rolloutId: string,
  change: { status?: RolloutStatus; reason?: string; currentBatch?: number },
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const terminal = change.status !== undefined && endedRolloutStatuses.includes(change.status);
    const [row] = await tx
      .update(rollouts)
      .set({
        ...(change.status !== undefined ? { status: change.status } : {}),
        ...(change.reason !== undefined ? { reason: change.reason } : {}),
        ...(change.currentBatch !== undefined ? { currentBatch: change.currentBatch } : {}),
        ...(terminal ? { finishedAt: new Date() } : {}),
      })
      .where(and(eq(rollouts.id, rolloutId), notInArray(rollouts.status, [...endedRolloutStatuses])))
      .returning();
    if (!row || !terminal) return Boolean(row);
    await markNotReached(tx, row);
    const type = change.status === "SUCCEEDED" ? "rollout.finished" : change.status === "FAILED" ? "rollout.failed" : "rollout.aborted";
    const counts = await countsIn(tx, rolloutId);
    await enqueueRolloutEvent(tx, rolloutId, type, { kind: row.kind, status: change.status, reason: row.reason, counts });
    return true;
  });
}

/** The servers of an ended rollout that nothing was done to: NOT_REACHED, with why. */
async function markNotReached(tx: Tx, row: RolloutRow): Promise<void> {
  const batches = await tx
    .select({
      batch: rolloutServers.batch,
      unreached: sql<number>`count(*) filter (where ${inArray(rolloutServers.state, [...unreachedRolloutServerStates])})::int`,
      total: sql<number>`count(*)::int`,
    })
    .from(rolloutServers)
    .where(eq(rolloutServers.rolloutId, row.id))
    .groupBy(rolloutServers.batch)
    .orderBy(asc(rolloutServers.batch));
  const first = batches.find((b) => Number(b.unreached) > 0);
  if (!first) return;
  const counts = await countsIn(tx, row.id);
  await tx
    .update(rolloutServers)
    .set({ state: "NOT_REACHED", reason: notReachedReason(row, first, counts.failed) })
    .where(and(eq(rolloutServers.rolloutId, row.id), inArray(rolloutServers.state, [...unreachedRolloutServerStates])));
}

/**
 * "not reached: the rollout stopped after batch 2 of 4 — max failures 1", "not reached: aborted
 * during batch 1 of 3 — <the owner's reason>": where the rollout stopped (after a batch when none
 * of the first unreached server's batch was started), and why.
 */
export function notReachedReason(
  row: Pick<RolloutRow, "status" | "reason" | "strategy" | "total" | "batchCount">,
  firstUnreached: { batch: number; unreached: number; total: number },
  failed: number,
): string {
  const of = `of ${row.batchCount}`;
  const where =
    Number(firstUnreached.unreached) < Number(firstUnreached.total)
      ? `during batch ${firstUnreached.batch + 1} ${of}`
      : firstUnreached.batch === 0
        ? `before batch 1 ${of}`
        : `after batch ${firstUnreached.batch} ${of}`;
  const why = row.reason ? ` — ${row.reason}` : "";
  if (row.status === "ABORTED") return `not reached: aborted ${where}${why}`;
  const budget = budgetOf(row);
  if (row.status === "FAILED" && budget !== undefined && failed >= budget)
    return `not reached: the rollout stopped ${where} — max failures ${budget}`;
  return `not reached: the rollout ended ${row.status} ${where}${why}`;
}

function budgetOf(row: Pick<RolloutRow, "strategy" | "total">): number | undefined {
  const strategy = row.strategy as Partial<RolloutStrategy>;
  return strategy.maxFailures ? failureBudget(strategy as RolloutStrategy, row.total) : undefined;
}

async function countsIn(tx: Tx, rolloutId: string): Promise<RolloutCounts> {
  return rolloutCounts(tx as unknown as Database, rolloutId);
}

/** `rollout.batch_finished`, with the counts after it. */
export async function recordBatchFinished(db: Database, rolloutId: string, batch: number, batchCount: number): Promise<RolloutCounts> {
  return db.transaction(async (tx) => {
    const counts = await countsIn(tx, rolloutId);
    await enqueueRolloutEvent(tx, rolloutId, "rollout.batch_finished", { batch, batches: batchCount, counts });
    return counts;
  });
}

/** Rollouts not ended (RUNNING or PAUSED), oldest first: the reconciler asks Temporal about each. */
export async function unendedRollouts(db: Database, limit: number): Promise<RolloutRow[]> {
  return db
    .select()
    .from(rollouts)
    .where(notInArray(rollouts.status, [...endedRolloutStatuses]))
    .orderBy(asc(rollouts.startedAt))
    .limit(limit);
}

/**
 * Ends a rollout whose workflow closed without recording its end (terminated,
 * timed out, failed): each RUNNING server takes its operation's end
 * (`finishRolloutChild`: one that never started is cancelled before it can),
 * then the status and its event (`setRolloutStatus`, once), which marks the
 * servers never reached NOT_REACHED with why. While a child's operation still
 * runs (a child cancelled by the parent-close policy is stopping) nothing is
 * written: false, and the next pass comes back.
 */
export async function settleClosedRollout(
  db: Database,
  rolloutId: string,
  end: { status: EndedRolloutStatus; reason: string },
): Promise<boolean> {
  const [row] = await db.select({ status: rollouts.status }).from(rollouts).where(eq(rollouts.id, rolloutId));
  // Its last run recorded the end after all (between the caller's read and its look at Temporal).
  if (!row || endedRolloutStatuses.includes(row.status)) return false;
  const [stillRunning] = await db
    .select({ id: operations.id })
    .from(operations)
    .where(and(eq(operations.rolloutId, rolloutId), eq(operations.status, "RUNNING"), isNotNull(operations.runId)))
    .limit(1);
  if (stillRunning) return false;
  const running = await db
    .select({ position: rolloutServers.position })
    .from(rolloutServers)
    .where(and(eq(rolloutServers.rolloutId, rolloutId), eq(rolloutServers.state, "RUNNING")));
  for (const { position } of running) await finishRolloutChild(db, rolloutId, position);
  return setRolloutStatus(db, rolloutId, end);
}
