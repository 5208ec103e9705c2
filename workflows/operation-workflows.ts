/**
 * The workflow each operation kind runs, with its input: its own module so that
 * a workflow starting operations as children (the rollout) imports it without
 * importing the whole contract, which imports that workflow.
 */
import type { OperationKind } from "../core/kernel/kinds.js";
import { bootstrapWorkflow } from "./bootstrap.js";
import type { OperationInput, RecoveryInput, ReinstallInput } from "./definitions.js";
import { type DeployKeyInput, deployKeyWorkflow } from "./deploy-key.js";
import { installAgentWorkflow } from "./install-agent.js";
import { recoveryWorkflow } from "./recovery.js";
import { reinstallWorkflow } from "./reinstall.js";
import { testConnectionWorkflow } from "./test-connection.js";

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
