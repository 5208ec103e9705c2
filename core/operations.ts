import { and, desc, eq, lt } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { newId } from "../db/ids.js";
import { type OperationStatus, operations } from "../db/schema.js";
import { isUniqueViolation } from "./db-errors.js";
import { AppError } from "./errors.js";
import { requireId } from "./ids.js";
import { enqueueServerEvent } from "./outbox.js";
import type { Owner } from "./owners.js";
import type { PageRequest } from "./pagination.js";
import { toPage } from "./pagination.js";

export type OperationRow = typeof operations.$inferSelect;
export const operationKinds = ["test_connection", "bootstrap", "deploy_key", "recovery", "reinstall", "install_agent"] as const;
export type OperationKind = (typeof operationKinds)[number];

/** The workflow id of an operation: business data, readable in the Web UI. */
export function workflowIdFor(kind: OperationKind, serverId: string, operationId: string): string {
  // Connection tests may run beside anything and repeat: each gets its own id.
  return kind === "test_connection" ? `test-connection/${serverId}/${operationId}` : `${kind.replace("_", "-")}/${serverId}`;
}

/**
 * Records a new RUNNING operation. A second provisioning operation for the same
 * server while one runs is refused by a partial unique index; the running one is
 * returned in the error so the caller can attach to it.
 */
export async function startOperation(db: Database, owner: Owner, serverId: string, kind: OperationKind): Promise<OperationRow> {
  const id = newId();
  try {
    return await db.transaction(async (tx) => {
      const [row] = await tx
        .insert(operations)
        .values({ id, ownerId: owner.id, serverId, kind, workflowId: workflowIdFor(kind, serverId, id) })
        .returning();
      await enqueueServerEvent(tx, serverId, "operation.started", { operationId: id, serverId, kind, at: new Date().toISOString() });
      return row as OperationRow;
    });
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

export async function setOperationRunId(db: Database, operationId: string, runId: string): Promise<void> {
  await db.update(operations).set({ runId }).where(eq(operations.id, operationId));
}

/** Ends an operation once (a retried activity finds it ended and changes nothing). */
export async function finishOperation(
  db: Database,
  operationId: string,
  outcome: { status: Exclude<OperationStatus, "RUNNING">; error?: string; result?: Record<string, unknown> },
): Promise<void> {
  await db.transaction(async (tx) => {
    const [row] = await tx
      .update(operations)
      .set({ status: outcome.status, error: outcome.error ?? null, result: outcome.result ?? null, finishedAt: new Date() })
      .where(and(eq(operations.id, operationId), eq(operations.status, "RUNNING")))
      .returning();
    if (!row?.serverId) return;
    const type = outcome.status === "SUCCEEDED" ? "operation.finished" : "operation.failed";
    await enqueueServerEvent(tx, row.serverId, type, {
      operationId,
      serverId: row.serverId,
      kind: row.kind,
      status: outcome.status,
      error: outcome.error ?? null,
      at: new Date().toISOString(),
    });
  });
}

export async function requireOperation(db: Database, owner: Owner, id: string): Promise<OperationRow> {
  const operationId = requireId("id", id);
  const [row] = await db
    .select()
    .from(operations)
    .where(and(eq(operations.id, operationId), eq(operations.ownerId, owner.id)));
  if (!row) throw AppError.notFound("operation", operationId);
  return row;
}

/** Newest first: an operator looks for the latest run. */
export async function listServerOperations(db: Database, owner: Owner, serverId: string, page: PageRequest) {
  const rows = await db
    .select()
    .from(operations)
    .where(
      and(eq(operations.ownerId, owner.id), eq(operations.serverId, serverId), page.afterId ? lt(operations.id, page.afterId) : undefined),
    )
    .orderBy(desc(operations.id))
    .limit(page.pageSize + 1);
  return toPage(rows, page);
}
