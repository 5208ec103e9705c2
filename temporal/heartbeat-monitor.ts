import { type Client, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from "@temporalio/client";
import { log } from "../core/kernel/log.js";
import { type HeartbeatMonitorInput, monitorSettingsSignal, systemWorkflows } from "../workflows/contract.js";
import { workflowRole } from "./search-attributes.js";

export const HEARTBEAT_MONITOR_ID = "heartbeat-monitor";

const summary = (input: HeartbeatMonitorInput) =>
  `Liveness: OFFLINE after ${input.timeoutSeconds} s without a heartbeat, swept every ${input.intervalSeconds} s`;

/** A failed workflow task is retried with a growing attempt number: the run cannot make progress on this code. */
async function isStuck(client: Client): Promise<boolean> {
  try {
    const described = await client.workflow.getHandle(HEARTBEAT_MONITOR_ID).describe();
    return described.status.name === "RUNNING" && (described.raw.pendingWorkflowTask?.attempt ?? 0) > 1;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return false;
    throw error;
  }
}

/** True once the run has no workflow task waiting: the signal was handled (it continued as new) or the run is closed. */
async function isSettled(client: Client): Promise<boolean> {
  const described = await client.workflow.getHandle(HEARTBEAT_MONITOR_ID).describe();
  return described.status.name !== "RUNNING" || !described.raw.pendingWorkflowTask;
}

async function replace(client: Client, taskQueue: string, input: HeartbeatMonitorInput): Promise<void> {
  log.warn("the heartbeat monitor's workflow task keeps failing (a change this code cannot replay): starting a new run", {
    workflowId: HEARTBEAT_MONITOR_ID,
  });
  await client.workflow
    .getHandle(HEARTBEAT_MONITOR_ID)
    .terminate("workflow task failing after an upgrade: replaced by a new run on the current code")
    .catch((error) => {
      if (!(error instanceof WorkflowNotFoundError)) throw error;
    });
  try {
    await client.workflow.start(systemWorkflows.heartbeatMonitor, {
      workflowId: HEARTBEAT_MONITOR_ID,
      taskQueue,
      args: [input],
      typedSearchAttributes: [workflowRole("housekeeping")],
      staticSummary: summary(input),
    });
  } catch (error) {
    // Another worker starting at the same moment replaced it first.
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
}

/**
 * Starts the singleton liveness monitor, or moves the running one to this
 * worker: the settings signal makes it continue as new, so the next run uses
 * this worker's configuration and workflow code. A run whose workflow task
 * fails (non-determinism after an incompatible change to the workflow) would
 * stay stuck however often it is signalled: it is terminated and started
 * fresh, before the signal and again if the signal's task fails.
 */
export async function ensureHeartbeatMonitor(
  client: Client,
  taskQueue: string,
  input: HeartbeatMonitorInput,
  options: { settleTimeoutMs?: number } = {},
): Promise<void> {
  if (await isStuck(client)) return replace(client, taskQueue, input);
  await client.workflow.signalWithStart(systemWorkflows.heartbeatMonitor, {
    workflowId: HEARTBEAT_MONITOR_ID,
    taskQueue,
    args: [input],
    signal: monitorSettingsSignal,
    signalArgs: [input],
    typedSearchAttributes: [workflowRole("housekeeping")],
    staticSummary: summary(input),
  });
  const deadline = Date.now() + (options.settleTimeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    if (await isStuck(client)) return replace(client, taskQueue, input);
    if (await isSettled(client)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  log.warn("the heartbeat monitor has not handled its settings signal yet", { workflowId: HEARTBEAT_MONITOR_ID });
}
