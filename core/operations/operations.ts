import { and, desc, eq, gt, isNull, lt, max, ne, or, sql } from "drizzle-orm";
import type { Database, Transaction } from "../../db/client.js";

export type { Transaction };

import { newId } from "../../db/ids.js";
import { operations, servers } from "../../db/schema.js";
import { operationFinished, operationStarted } from "../../observability/metrics.js";
import { withinClustersByServer } from "../inventory/owner-scope.js";
import type { Owner } from "../inventory/owners.js";
import { isUniqueViolation } from "../kernel/db-errors.js";
import { AppError } from "../kernel/errors.js";
import { requireId } from "../kernel/ids.js";
import type { OperationKind, OperationStatus } from "../kernel/kinds.js";
import { enqueueServerEvent } from "../kernel/outbox.js";
import type { PageRequest } from "../kernel/pagination.js";
import { toPage } from "../kernel/pagination.js";

export type OperationRow = typeof operations.$inferSelect;

/** The workflow id of an operation: business data, readable in the Web UI. */
export function workflowIdFor(kind: OperationKind, serverId: string, operationId: string): string {
  // Connection tests may run beside anything and repeat: each gets its own id.
  return kind === "test_connection" ? `test-connection/${serverId}/${operationId}` : `${kind.replace("_", "-")}/${serverId}`;
}

/**
 * Who starts an operation that no owner asked for: the fleet check, the
 * recovery of OFFLINE servers, the seed-compatibility queue. The row still
 * belongs to the server's owner (who sees it in ListServerOperations), but no
 * owner identity is made up for it.
 */
export type SystemActor = "fleet_check" | "offline_recovery" | "compat_queue";

/** The authenticated owner, a system actor, or an owner's rollout (core/rollouts/rollouts.ts: the row is linked to it). */
export type OperationStarter = { owner: Owner } | { system: SystemActor } | { rollout: { id: string; ownerId: string } };

/**
 * Records a new RUNNING operation for an owner's own server. A second
 * provisioning operation for the same server while one runs is refused by a
 * partial unique index; the running one is returned in the error so the caller
 * can attach to it.
 */
export function startOperation(db: Database, owner: Owner, serverId: string, kind: OperationKind): Promise<OperationRow> {
  return openOperation(db, { owner }, serverId, kind);
}

/** The same for an operation a system actor starts: the row's owner is the server's owner, read with the server row. */
export function startSystemOperation(db: Database, serverId: string, kind: OperationKind, actor: SystemActor): Promise<OperationRow> {
  return openOperation(db, { system: actor }, serverId, kind);
}

/** The same for a child of an owner's rollout: the row carries the rollout id, and the server must be the rollout owner's. */
export function startRolloutOperation(
  db: Database,
  rollout: { id: string; ownerId: string },
  serverId: string,
  kind: OperationKind,
): Promise<OperationRow> {
  return openOperation(db, { rollout }, serverId, kind);
}

const startedBy = (starter: OperationStarter): string => ("owner" in starter ? "owner" : "rollout" in starter ? "rollout" : starter.system);

async function openOperation(db: Database, starter: OperationStarter, serverId: string, kind: OperationKind): Promise<OperationRow> {
  const id = newId();
  try {
    const started = await db.transaction(async (tx) => {
      // Serialises with UpdateServer, which refuses to change the address or credential while an operation runs.
      const [server] = await tx.select({ ownerId: servers.ownerId }).from(servers).where(eq(servers.id, serverId)).for("update");
      const ownerId = "owner" in starter ? starter.owner.id : "rollout" in starter ? starter.rollout.ownerId : undefined;
      if (!server || (ownerId !== undefined && server.ownerId !== ownerId)) throw AppError.notFound("server", serverId);
      const rolloutId = "rollout" in starter ? starter.rollout.id : undefined;
      const [row] = await tx
        .insert(operations)
        .values({ id, ownerId: server.ownerId, serverId, kind, workflowId: workflowIdFor(kind, serverId, id), rolloutId })
        .returning();
      await enqueueServerEvent(tx, serverId, "operation.started", {
        operationId: id,
        serverId,
        kind,
        startedBy: startedBy(starter),
        ...(rolloutId ? { rolloutId } : {}),
        at: new Date().toISOString(),
      });
      return row as OperationRow;
    });
    return operationStarted(started, startedBy(starter));
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const [running] = await db
      .select()
      .from(operations)
      .where(and(eq(operations.serverId, serverId), eq(operations.status, "RUNNING")));
    throw new AppError(
      "failed_precondition",
      `server ${serverId} already has a running ${running?.kind ?? ""} operation ${running?.id ?? ""}`.trim(),
      {
        cause: running,
      },
    );
  }
}

/** The running provisioning operation of a server, if any (connection tests are read-only and do not count). */
export async function runningOperation(db: Database | Transaction, serverId: string): Promise<OperationRow | undefined> {
  const [row] = await db
    .select()
    .from(operations)
    .where(and(eq(operations.serverId, serverId), eq(operations.status, "RUNNING"), ne(operations.kind, "test_connection")))
    .limit(1);
  return row;
}

/**
 * Inside a transaction that holds the server row (`FOR UPDATE`): refuses a
 * change that would move a running operation onto another machine or login.
 */
export async function refuseWhileOperationRuns(tx: Transaction, serverId: string, what: string): Promise<void> {
  const running = await runningOperation(tx, serverId);
  if (running) {
    throw new AppError(
      "failed_precondition",
      `${what} cannot change while the ${running.kind} operation ${running.id} runs: cancel it or wait`,
      {
        cause: running,
      },
    );
  }
}

export async function isOperationEnded(db: Database, operationId: string): Promise<boolean> {
  const [row] = await db.select({ status: operations.status }).from(operations).where(eq(operations.id, operationId));
  return row?.status !== "RUNNING";
}

export async function setOperationRunId(db: Database, operationId: string, runId: string): Promise<void> {
  await db.update(operations).set({ runId }).where(eq(operations.id, operationId));
}

/**
 * The first thing an operation's workflow does: records its run id on its row
 * and checks that the row is still RUNNING. A row that ended before its
 * workflow got going (the reconciler found no workflow, the starter gave up)
 * stays ended, and the workflow does nothing.
 */
export async function claimOperation(db: Database, operationId: string, runId: string): Promise<boolean> {
  const [row] = await db
    .update(operations)
    .set({ runId })
    .where(and(eq(operations.id, operationId), eq(operations.status, "RUNNING"), or(isNull(operations.runId), eq(operations.runId, runId))))
    .returning({ id: operations.id });
  return Boolean(row);
}

/** Ends an operation once (a retried activity finds it ended and changes nothing). */
export async function finishOperation(
  db: Database,
  operationId: string,
  outcome: { status: Exclude<OperationStatus, "RUNNING">; error?: string; result?: Record<string, unknown> },
): Promise<void> {
  const ended = await db.transaction(async (tx) => {
    const [row] = await tx
      .update(operations)
      .set({ status: outcome.status, error: outcome.error ?? null, result: outcome.result ?? null, finishedAt: new Date() })
      .where(and(eq(operations.id, operationId), eq(operations.status, "RUNNING")))
      .returning();
    if (!row?.serverId) return row;
    const type = outcome.status === "SUCCEEDED" ? "operation.finished" : "operation.failed";
    await enqueueServerEvent(tx, row.serverId, type, {
      operationId,
      serverId: row.serverId,
      kind: row.kind,
      status: outcome.status,
      error: outcome.error ?? null,
      at: new Date().toISOString(),
    });
    return row;
  });
  if (ended) operationFinished(ended);
}

export async function requireOperation(db: Database, owner: Owner, id: string): Promise<OperationRow> {
  const operationId = requireId("id", id);
  const [row] = await db
    .select()
    .from(operations)
    .where(and(eq(operations.id, operationId), eq(operations.ownerId, owner.id), withinClustersByServer(owner, operations.serverId)));
  if (!row) throw AppError.notFound("operation", operationId);
  return row;
}

/** Newest first: an operator looks for the latest run. */
export async function listServerOperations(db: Database, owner: Owner, serverId: string, page: PageRequest) {
  const rows = await db
    .select()
    .from(operations)
    .where(
      and(
        eq(operations.ownerId, owner.id),
        withinClustersByServer(owner, operations.serverId),
        eq(operations.serverId, serverId),
        page.afterId ? lt(operations.id, page.afterId) : undefined,
      ),
    )
    .orderBy(desc(operations.id))
    .limit(page.pageSize + 1);
  return toPage(rows, page);
}

/** The newest operation start on a server, exact to the microsecond (as text, so nothing is rounded); null when none ever started. */
export async function newestOperationStart(db: Database, serverId: string): Promise<string | null> {
  const [row] = await db
    .select({ at: sql<string | null>`${max(operations.startedAt)}::text` })
    .from(operations)
    .where(eq(operations.serverId, serverId));
  return row?.at ?? null;
}

/** The newest operation of this kind on the server started after `after` (a `newestOperationStart` mark; null: any). */
export async function newestOperationStartedAfter(
  db: Database,
  serverId: string,
  kind: OperationKind,
  after: string | null,
): Promise<Pick<OperationRow, "id" | "workflowId" | "runId"> | undefined> {
  const [row] = await db
    .select({ id: operations.id, workflowId: operations.workflowId, runId: operations.runId })
    .from(operations)
    .where(
      and(
        eq(operations.serverId, serverId),
        eq(operations.kind, kind),
        after === null ? undefined : gt(operations.startedAt, sql`${after}::timestamptz`),
      ),
    )
    .orderBy(desc(operations.startedAt))
    .limit(1);
  return row;
}
