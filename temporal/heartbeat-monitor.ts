import type { Client } from "@temporalio/client";
import { type HeartbeatMonitorInput, monitorSettingsSignal } from "../workflows/definitions.js";

export const HEARTBEAT_MONITOR_ID = "heartbeat-monitor";

/**
 * Starts the singleton liveness monitor, or hands the running one these
 * settings (every worker calls this at start, so a changed
 * AGENT_HEARTBEAT_TIMEOUT applies once a worker restarts with it).
 */
export async function ensureHeartbeatMonitor(client: Client, taskQueue: string, input: HeartbeatMonitorInput): Promise<void> {
  await client.workflow.signalWithStart("heartbeatMonitorWorkflow", {
    workflowId: HEARTBEAT_MONITOR_ID,
    taskQueue,
    args: [input],
    signal: monitorSettingsSignal,
    signalArgs: [input],
    staticSummary: `Liveness: OFFLINE after ${input.timeoutSeconds} s without a heartbeat, swept every ${input.intervalSeconds} s`,
  });
}
