import { type StatusActor, type StatusWrite, setServerStatus } from "../core/inventory/server-status.js";
import type { OperationStatus, ServerStatus } from "../core/kernel/kinds.js";
import { claimOperation, finishOperation } from "../core/operations/operations.js";
import type { ActivityDeps } from "./deps.js";

/** Database activities: the workflow's view of the world written where the API reads it. */
export function createRecordActivities(deps: ActivityDeps) {
  return {
    /** Answers whether the state machine let the change through (a refusal is an answer, not an error). */
    setServerStatus(input: {
      serverId: string;
      status: ServerStatus;
      reason: string;
      actor: StatusActor;
      onlyFrom?: ServerStatus[];
    }): Promise<StatusWrite> {
      return setServerStatus(deps.db, input.serverId, input.status, input.reason, input.actor, { onlyFrom: input.onlyFrom });
    },
    /** The workflow takes its operation row at start; false when the row has ended meanwhile (nothing may run then). */
    claimOperation(input: { operationId: string; runId: string }): Promise<boolean> {
      return claimOperation(deps.db, input.operationId, input.runId);
    },
    async finishOperation(input: {
      operationId: string;
      status: Exclude<OperationStatus, "RUNNING">;
      error?: string;
      result?: Record<string, unknown>;
    }): Promise<void> {
      await finishOperation(deps.db, input.operationId, input);
    },
  };
}
