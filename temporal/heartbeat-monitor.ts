import type { Client } from "@temporalio/client";
import type { HeartbeatMonitorInput } from "../workflows/heartbeat-monitor.js";

export const HEARTBEAT_MONITOR_ID = "heartbeat-monitor";

/**
 * Starts the singleton liveness monitor unless it already runs (every worker
 * calls this at start). A running monitor keeps its input: to change the
 * timeout, terminate it and the next worker start brings it back.
 */
export async function ensureHeartbeatMonitor(client: Client, taskQueue: string, input: HeartbeatMonitorInput): Promise<void> {
  await client.workflow.start("heartbeatMonitorWorkflow", {
    workflowId: HEARTBEAT_MONITOR_ID,
    taskQueue,
    args: [input],
    workflowIdConflictPolicy: "USE_EXISTING",
    staticSummary: `Liveness: OFFLINE after ${input.timeoutSeconds} s without a heartbeat, swept every ${input.intervalSeconds} s`,
  });
}
