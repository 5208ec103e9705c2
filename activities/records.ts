import { finishOperation } from "../core/operations.js";
import { setServerStatus } from "../core/server-status.js";
import type { OperationStatus, ServerStatus } from "../db/schema.js";
import type { ActivityDeps } from "./deps.js";

/** Database activities: the workflow's view of the world written where the API reads it. */
export function createRecordActivities(deps: ActivityDeps) {
  return {
    async setServerStatus(input: { serverId: string; status: ServerStatus; reason: string }): Promise<void> {
      await setServerStatus(deps.db, input.serverId, input.status, input.reason);
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
