import { type Client, WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from "@temporalio/client";
import type { TypedSearchAttributes } from "@temporalio/common";
import { eq } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { operations } from "../../db/schema.js";
import {
  clusterIdAttribute,
  operationAttribute,
  ownerIdAttribute,
  serverIdAttribute,
  serverNameAttribute,
  workflowRole,
} from "../../temporal/search-attributes.js";
import {
  type OperationOptions,
  type OperationProgress,
  type OperationWorkflow,
  operationWorkflow,
  progressQuery,
} from "../../workflows/contract.js";
import type { Owner } from "../inventory/owners.js";
import { requireServer, requireServerForSystem, type ServerRow } from "../inventory/servers.js";
import { AppError } from "../kernel/errors.js";
import type { OperationKind } from "../kernel/kinds.js";
import {
  finishOperation,
  isOperationEnded,
  type OperationRow,
  type SystemActor,
  setOperationRunId,
  startOperation,
  startSystemOperation,
} from "./operations.js";
import { describeOperationWorkflow, settleOperation } from "./reconcile.js";
import { operationWorkflowMetadata, shownName } from "./workflow-summary.js";

/** How the API reaches Temporal. */
export interface WorkflowGateway {
  client: Client;
  taskQueue: string;
}

/** The rest of a kind's input: may be left out when every field of it is optional. */
type OptionsArg<K extends OperationKind> =
  Record<string, never> extends OperationOptions<K> ? [options?: OperationOptions<K>] : [options: OperationOptions<K>];

export interface StartedOperation<K extends OperationKind> {
  operation: OperationRow;
  handle: WorkflowHandle<OperationWorkflow<K>>;
  attached: boolean;
}

/**
 * Starts an operation on an owner's server: the operation row first (which
 * refuses a second provisioning operation on the same server), then the
 * workflow with a business id, search attributes and a summary for the Web UI.
 * A start of the same kind while one runs returns the running operation (attach).
 */
export async function startServerOperation<K extends OperationKind>(
  db: Database,
  gateway: WorkflowGateway,
  owner: Owner,
  serverId: string,
  kind: K,
  ...[options]: OptionsArg<K>
): Promise<StartedOperation<K>> {
  const server = await requireServer(db, owner, serverId);
  return startOperationWorkflow(db, gateway, server, kind, options, () => startOperation(db, owner, server.id, kind));
}

/** The same for a system actor (fleet check, OFFLINE recovery, compat queue): no owner identity is made up for it. */
export async function startSystemServerOperation<K extends OperationKind>(
  db: Database,
  gateway: WorkflowGateway,
  serverId: string,
  kind: K,
  actor: SystemActor,
  ...[options]: OptionsArg<K>
): Promise<StartedOperation<K>> {
  const server = await requireServerForSystem(db, serverId);
  return startOperationWorkflow(db, gateway, server, kind, options, () => startSystemOperation(db, server.id, kind, actor));
}

async function startOperationWorkflow<K extends OperationKind>(
  db: Database,
  gateway: WorkflowGateway,
  server: ServerRow,
  kind: K,
  options: OperationOptions<K> | undefined,
  open: () => Promise<OperationRow>,
): Promise<StartedOperation<K>> {
  let operation: OperationRow | undefined;
  for (let attempt = 0; !operation; attempt++) {
    try {
      operation = await open();
    } catch (error) {
      const running = error instanceof AppError ? (error.cause as OperationRow | undefined) : undefined;
      if (!running) throw error;
      // The running row may be an orphan (its workflow terminated or never started): settle it against Temporal first.
      const found = attempt === 0 ? await settleOperation(db, gateway.client, running).catch(() => undefined) : undefined;
      if (found && found.state !== "running" && (await isOperationEnded(db, running.id))) continue;
      if (running.kind === kind)
        return { operation: running, handle: gateway.client.workflow.getHandle<OperationWorkflow<K>>(running.workflowId), attached: true };
      throw error;
    }
  }
  const start = () =>
    gateway.client.workflow.start(operationWorkflow(kind), {
      workflowId: operation.workflowId,
      taskQueue: gateway.taskQueue,
      args: [{ operationId: operation.id, serverId: server.id, ...options }] as Parameters<OperationWorkflow<K>>,
      workflowIdConflictPolicy: "FAIL",
      workflowIdReusePolicy: "ALLOW_DUPLICATE",
      typedSearchAttributes: [
        { key: serverIdAttribute, value: server.id },
        { key: serverNameAttribute, value: shownName(server.name) },
        { key: clusterIdAttribute, value: server.clusterId },
        { key: ownerIdAttribute, value: server.ownerId },
        { key: operationAttribute, value: kind },
        workflowRole("operation"),
      ] as unknown as TypedSearchAttributes,
      ...operationWorkflowMetadata({ kind, operationId: operation.id, server }),
    });
  try {
    const handle = await start().catch(async (error) => {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      // The database says no operation runs, so the previous run has recorded its end and is closing: let it close.
      await waitForClose(gateway, operation.workflowId, 15_000);
      return start();
    });
    await setOperationRunId(db, operation.id, handle.firstExecutionRunId);
    return { operation: { ...operation, runId: handle.firstExecutionRunId }, handle, attached: false };
  } catch (error) {
    return resolveFailedStart<K>(db, gateway, operation, error);
  }
}

/**
 * A start that failed or timed out may still have started the workflow: ask
 * Temporal. Started for this operation → carry on with it; not there → the row
 * fails; Temporal unreachable → the row stays RUNNING for the reconciler, which
 * asks again later.
 */
async function resolveFailedStart<K extends OperationKind>(
  db: Database,
  gateway: WorkflowGateway,
  operation: OperationRow,
  startError: unknown,
): Promise<StartedOperation<K>> {
  let found: Awaited<ReturnType<typeof describeOperationWorkflow>>;
  try {
    found = await describeOperationWorkflow(gateway.client, operation);
  } catch {
    throw new AppError("unavailable", `Temporal did not confirm the start of operation ${operation.id}; it will be reconciled`, {
      cause: startError,
    });
  }
  if (found.state === "running") {
    await setOperationRunId(db, operation.id, found.runId);
    return {
      operation: { ...operation, runId: found.runId },
      handle: gateway.client.workflow.getHandle<OperationWorkflow<K>>(operation.workflowId, found.runId),
      attached: false,
    };
  }
  if (found.state === "closed") {
    // Started and already over (a very short run whose end was not recorded): its own outcome, not a guess.
    await finishOperation(db, operation.id, { status: found.status, error: found.error });
    const [ended] = await db.select().from(operations).where(eq(operations.id, operation.id));
    const handle = gateway.client.workflow.getHandle<OperationWorkflow<K>>(operation.workflowId, found.runId);
    return { operation: ended ?? operation, handle, attached: false };
  }
  await finishOperation(db, operation.id, { status: "FAILED", error: "the workflow could not be started" });
  if (startError instanceof WorkflowExecutionAlreadyStartedError) {
    throw new AppError("failed_precondition", `a ${operation.kind} workflow is already running for server ${operation.serverId}`, {
      cause: startError,
    });
  }
  throw startError;
}

/** Live progress of a running operation, or undefined when the workflow cannot answer right now. */
export async function queryProgress(gateway: WorkflowGateway, operation: OperationRow): Promise<OperationProgress | undefined> {
  try {
    return await gateway.client.workflow.getHandle(operation.workflowId, operation.runId ?? undefined).query(progressQuery);
  } catch {
    return undefined;
  }
}

async function waitForClose(gateway: WorkflowGateway, workflowId: string, timeoutMs: number): Promise<void> {
  const closed = gateway.client.workflow
    .getHandle(workflowId)
    .result()
    .catch(() => undefined);
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, timeoutMs))]);
}
