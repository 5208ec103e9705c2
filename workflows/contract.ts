/**
 * The typed boundary between api/, core/, temporal/ and workflows/: api/, core/
 * and temporal/ start, query, signal and update workflows only through this
 * module. It holds every workflow function a client starts (an operation kind's,
 * the system ones, plans and rollouts: the type is the function's name, so a
 * rename is a compile error, not a runtime "unknown workflow type") and
 * re-exports their inputs, results, queries, signals, updates and failure types.
 */

import type { PlanInput, PlanResult } from "./definitions.js";
import { fleetCheckWorkflow } from "./fleet-check.js";
import { heartbeatMonitorWorkflow } from "./heartbeat-monitor.js";
import { rollUpMetricsWorkflow } from "./metric-rollups.js";
import { planWorkflow } from "./plan.js";
import { reconcileOperationsWorkflow } from "./reconcile.js";
import { rolloutWorkflow } from "./rollout.js";
import type { RolloutInput, RolloutResult } from "./rollout-definitions.js";

export * from "./definitions.js";
export type { DeployKeyInput } from "./deploy-key.js";
export * from "./failure-types.js";
export * from "./operation-workflows.js";
export * from "./rollout-definitions.js";

/** System workflows, started by schedules and at worker start: no owner, no operation row. */
export const systemWorkflows = {
  fleetCheck: fleetCheckWorkflow,
  reconcileOperations: reconcileOperationsWorkflow,
  heartbeatMonitor: heartbeatMonitorWorkflow,
  rollUpMetrics: rollUpMetricsWorkflow,
};

/**
 * Fleet workflows, started for an owner's servers, with no operation row and no
 * server status change of their own: a plan (`plan/<uuid>`) and a rollout (its
 * rollouts row; each server's step is an operation run as a child workflow).
 */
export const fleetWorkflows = {
  plan: planWorkflow,
  rollout: rolloutWorkflow,
} satisfies { plan: (input: PlanInput) => Promise<PlanResult>; rollout: (input: RolloutInput) => Promise<RolloutResult> };
