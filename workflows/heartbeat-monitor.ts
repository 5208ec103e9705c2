import { continueAsNew, ParentClosePolicy, setHandler, sleep, startChild } from "@temporalio/workflow";
import { type HeartbeatMonitorInput, monitorSettingsQuery, monitorSettingsSignal } from "./definitions.js";
import { maintenanceActivities, recordActivities } from "./proxies.js";
import { recoveryWorkflow } from "./recovery.js";

export type { HeartbeatMonitorInput };

/** Sweeps per run before continuing as new, which keeps the history small. */
const SWEEPS_PER_RUN = 200;

/**
 * The singleton liveness loop (`heartbeat-monitor`): every interval one sweep
 * statement marks silent servers OFFLINE and heard-from ones ONLINE. New
 * settings arrive by signal (every worker sends its configuration at start) and
 * apply from the next sweep on.
 */
export async function heartbeatMonitorWorkflow(initial: HeartbeatMonitorInput): Promise<never> {
  let input = initial;
  setHandler(monitorSettingsSignal, (next) => {
    input = next;
  });
  setHandler(monitorSettingsQuery, () => input);
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
