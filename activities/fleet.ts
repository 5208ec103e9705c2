import { idleProvisionedServerIds } from "../core/inventory/servers.js";
import { AppError } from "../core/kernel/errors.js";
import type { OperationKind } from "../core/kernel/kinds.js";
import { startSystemOperation } from "../core/operations/operations.js";
import type { ConnectionTestResult, Diagnosis } from "../workflows/definitions.js";
import type { ActivityDeps } from "./deps.js";
import { outcomeOf } from "./provisioning.js";
import { diagnose } from "./recovery.js";

/** Fleet-check activities: page through servers, check one, open an operation for a follow-up workflow. */
export function createFleetActivities(deps: ActivityDeps) {
  return {
    /** Servers worth checking (not being rebuilt or provisioned), in id order, one page at a time. */
    async listServersToCheck(input: { afterId?: string; limit: number }): Promise<string[]> {
      return idleProvisionedServerIds(deps.db, input);
    },

    /** Connects and diagnoses; classified, never thrown, so one bad server does not stop the sweep. */
    async checkServer(input: {
      serverId: string;
    }): Promise<{ outcome: ConnectionTestResult["outcome"]; message: string; diagnosis?: Diagnosis }> {
      try {
        return { outcome: "ok", message: "connected", diagnosis: await diagnose(deps, input.serverId) };
      } catch (error) {
        const outcome = outcomeOf(error);
        return { outcome, message: error instanceof Error ? error.message : String(error) };
      }
    },

    /** Records an operation for a workflow the scheduler starts; undefined when the server is busy with another. */
    async openOperation(input: {
      serverId: string;
      kind: OperationKind;
    }): Promise<{ operationId: string; workflowId: string } | undefined> {
      try {
        const op = await startSystemOperation(deps.db, input.serverId, input.kind, "fleet_check");
        return { operationId: op.id, workflowId: op.workflowId };
      } catch (error) {
        // Busy with another operation, or deleted since the page was read.
        if (error instanceof AppError && (error.kind === "failed_precondition" || error.kind === "not_found")) return undefined;
        throw error;
      }
    },
  };
}
