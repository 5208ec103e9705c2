import type { ReconcileReport } from "../core/operations/reconcile.js";
import { maintenanceActivities } from "./proxies.js";

export interface ReconcileInput {
  /** A RUNNING row whose workflow Temporal does not know is ended only once it is this old (its start may be on its way). */
  missingGraceSeconds?: number;
}

/**
 * Run by the `operations-reconciler` Schedule (a system workflow, no owner):
 * ends every RUNNING operation whose workflow closed or never started with the
 * workflow's real outcome, and moves servers stranded in PROVISIONING or
 * REINSTALLING to ERROR with a reason, so every server can be operated again.
 */
export async function reconcileOperationsWorkflow(input: ReconcileInput = {}): Promise<ReconcileReport> {
  return maintenanceActivities.reconcileOperations({ missingGraceSeconds: input.missingGraceSeconds ?? 60 });
}
