import { Context } from "@temporalio/activity";
import { type ReconcileReport, reconcileOperations } from "../core/operations/reconcile.js";
import type { ActivityDeps } from "./deps.js";
import { heartbeating } from "./ssh/remote-step.js";

/** The reconciler's one activity: asks Temporal (through the worker's own client) about every RUNNING operation. */
export function createReconcileActivities(deps: ActivityDeps) {
  return {
    reconcileOperations: (input: { missingGraceSeconds: number }): Promise<ReconcileReport> =>
      heartbeating(() => reconcileOperations(deps.db, Context.current().client, { missingGraceMs: input.missingGraceSeconds * 1000 })),
  };
}
