/**
 * Workflow entry points registered with the worker. Workflows are orchestration
 * only: deterministic, no I/O (biome.json forbids Node built-ins and I/O
 * libraries here).
 */
export { bootstrapWorkflow } from "./bootstrap.js";
export { deployKeyWorkflow } from "./deploy-key.js";
export { fleetCheckWorkflow } from "./fleet-check.js";
export { heartbeatMonitorWorkflow } from "./heartbeat-monitor.js";
export { installAgentWorkflow } from "./install-agent.js";
export { planWorkflow } from "./plan.js";
export { reconcileOperationsWorkflow } from "./reconcile.js";
export { recoveryWorkflow } from "./recovery.js";
export { reinstallWorkflow } from "./reinstall.js";
export { rolloutWorkflow } from "./rollout.js";
export { testConnectionWorkflow } from "./test-connection.js";
