/**
 * The typed boundary between api/, core/, temporal/ and workflows/: every
 * workflow is started by its function (its type is the function's name, so a
 * rename is a compile error, not a runtime "unknown workflow type"), with the
 * input, result, query and failure type names defined here.
 */
import type { OperationKindName } from "../core/server-status.js";
import { bootstrapWorkflow } from "./bootstrap.js";
import { deployKeyWorkflow } from "./deploy-key.js";
import { fleetCheckWorkflow } from "./fleet-check.js";
import { installAgentWorkflow } from "./install-agent.js";
import { reconcileOperationsWorkflow } from "./reconcile.js";
import { recoveryWorkflow } from "./recovery.js";
import { reinstallWorkflow } from "./reinstall.js";
import { testConnectionWorkflow } from "./test-connection.js";

export * from "./definitions.js";
export * from "./failure-types.js";

/** The workflow each operation kind runs. */
export const operationWorkflows = {
  test_connection: testConnectionWorkflow,
  bootstrap: bootstrapWorkflow,
  deploy_key: deployKeyWorkflow,
  recovery: recoveryWorkflow,
  reinstall: reinstallWorkflow,
  install_agent: installAgentWorkflow,
} satisfies Record<OperationKindName, (input: never) => Promise<unknown>>;

/** System workflows, started by schedules: no owner, no operation row. */
export const systemWorkflows = { fleetCheck: fleetCheckWorkflow, reconcileOperations: reconcileOperationsWorkflow };
