import { continueAsNew, ParentClosePolicy, sleep, startChild } from "@temporalio/workflow";
import { maintenanceActivities, recordActivities } from "./proxies.js";
import { recoveryWorkflow } from "./recovery.js";

export interface HeartbeatMonitorInput {
  /** A server whose last heartbeat is older than this is OFFLINE. */
  timeoutSeconds: number;
  /** Seconds between sweeps. */
  intervalSeconds: number;
  /** Start a recovery workflow for each server that goes OFFLINE. */
  recoverOffline: boolean;
  metricsRetentionHours: number;
}

/** Sweeps per run before continuing as new, which keeps the history small. */
const SWEEPS_PER_RUN = 200;

/**
 * The singleton liveness loop (`heartbeat-monitor`): every interval one sweep
 * statement marks silent servers OFFLINE and heard-from ones ONLINE.
 */
export async function heartbeatMonitorWorkflow(input: HeartbeatMonitorInput): Promise<never> {
  for (let i = 0; i < SWEEPS_PER_RUN; i++) {
    const result = await recordActivities.sweepLiveness({ timeoutSeconds: input.timeoutSeconds });
    if (input.recoverOffline) {
      for (const serverId of result.offlineIds) {
        const opened = await recordActivities.openOperation({ serverId, kind: "recovery" });
        if (!opened) continue;
        await startChild(recoveryWorkflow, {
          workflowId: opened.workflowId,
          args: [{ serverId, operationId: opened.operationId }],
          parentClosePolicy: ParentClosePolicy.ABANDON,
        });
      }
    }
    if (i === 0) await maintenanceActivities.pruneMetrics({ retentionHours: input.metricsRetentionHours });
    await sleep(`${input.intervalSeconds} seconds`);
  }
  return continueAsNew<typeof heartbeatMonitorWorkflow>(input);
}
