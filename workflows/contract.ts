/**
 * The typed boundary between api/, core/, temporal/ and workflows/: every
 * workflow is started by its function (its type is the function's name, so a
 * rename is a compile error, not a runtime "unknown workflow type"), with the
 * input, result, query and failure type names defined here.
 */
import type { OperationKind } from "../core/kernel/kinds.js";
import { bootstrapWorkflow } from "./bootstrap.js";
import type { OperationInput, PlanInput, PlanResult, RecoveryInput, ReinstallInput } from "./definitions.js";
import { type DeployKeyInput, deployKeyWorkflow } from "./deploy-key.js";
import { fleetCheckWorkflow } from "./fleet-check.js";
import { heartbeatMonitorWorkflow } from "./heartbeat-monitor.js";
import { installAgentWorkflow } from "./install-agent.js";
import { rollUpMetricsWorkflow } from "./metric-rollups.js";
import { planWorkflow } from "./plan.js";
import { reconcileOperationsWorkflow } from "./reconcile.js";
import { recoveryWorkflow } from "./recovery.js";
import { reinstallWorkflow } from "./reinstall.js";
import { testConnectionWorkflow } from "./test-connection.js";

export * from "./definitions.js";
export type { DeployKeyInput } from "./deploy-key.js";
export * from "./failure-types.js";

/** The input each operation kind's workflow takes. */
export interface OperationInputs {
  test_connection: OperationInput;
  bootstrap: OperationInput;
  deploy_key: DeployKeyInput;
  recovery: RecoveryInput;
  reinstall: ReinstallInput;
  install_agent: OperationInput;
}

/** What a starter adds to the operation and server ids for one kind (the rest of its input). */
export type OperationOptions<K extends OperationKind> = Omit<OperationInputs[K], keyof OperationInput>;

/** The workflow each operation kind runs. */
export const operationWorkflows = {
  test_connection: testConnectionWorkflow,
  bootstrap: bootstrapWorkflow,
  deploy_key: deployKeyWorkflow,
  recovery: recoveryWorkflow,
  reinstall: reinstallWorkflow,
  install_agent: installAgentWorkflow,
} satisfies { [K in OperationKind]: (input: OperationInputs[K]) => Promise<unknown> };

/** The workflow function of one operation kind. */
export type OperationWorkflow<K extends OperationKind> = (input: OperationInputs[K]) => ReturnType<(typeof operationWorkflows)[K]>;

/** Looks up the workflow of a kind with its input and result types kept (an indexed access alone would lose them). */
export function operationWorkflow<K extends OperationKind>(kind: K): OperationWorkflow<K> {
  return operationWorkflows[kind] as unknown as OperationWorkflow<K>;
}

/** System workflows, started by schedules and at worker start: no owner, no operation row. */
export const systemWorkflows = {
  fleetCheck: fleetCheckWorkflow,
  reconcileOperations: reconcileOperationsWorkflow,
  heartbeatMonitor: heartbeatMonitorWorkflow,
  rollUpMetrics: rollUpMetricsWorkflow,
};

/** Fleet workflows, started for an owner's servers: no operation row, no server status change (`plan/<uuid>`). */
export const fleetWorkflows = {
  plan: planWorkflow,
} satisfies { plan: (input: PlanInput) => Promise<PlanResult> };
