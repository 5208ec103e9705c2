import { condition, makeContinueAsNewFunc, setHandler } from "@temporalio/workflow";
import { workflowRole } from "../temporal/search-attributes.js";
import { type HeartbeatMonitorInput, monitorSettingsQuery, monitorSettingsSignal } from "./definitions.js";
import { maintenanceActivities, recordActivities } from "./proxies.js";

export type { HeartbeatMonitorInput };

/** Sweeps per run before continuing as new, which keeps the history small. */
const SWEEPS_PER_RUN = 200;

/**
 * The singleton liveness loop (`heartbeat-monitor`): every interval one sweep
 * statement marks silent servers OFFLINE and heard-from ones ONLINE. Its
 * history stays bounded: one local activity and one timer per sweep, whatever
 * the fleet's size, and a new run every 200 sweeps. Recoveries of OFFLINE
 * servers are started by an activity, N at a time, never as children of this
 * workflow. New settings arrive by signal (every worker sends its configuration
 * at start): the run then continues as new, which also moves the monitor to the
 * workflow code of the worker that just started.
 */
export async function heartbeatMonitorWorkflow(initial: HeartbeatMonitorInput): Promise<never> {
  let input = initial;
  let sweeps = 0;
  let restart = false;
  setHandler(monitorSettingsSignal, (next) => {
    input = next;
    // The signal of the signal-with-start that created this run needs no new run.
    if (sweeps > 0) restart = true;
  });
  setHandler(monitorSettingsQuery, () => input);
  let recoveriesWaiting = true;
  while (sweeps < SWEEPS_PER_RUN && !restart) {
    const result = await recordActivities.sweepLiveness({
      timeoutSeconds: input.timeoutSeconds,
      instanceDeadAfterSeconds: input.instanceDeadAfterSeconds,
    });
    sweeps += 1;
    if (input.recoverOffline && (result.offline > 0 || recoveriesWaiting)) {
      const recoveries = await maintenanceActivities.startOfflineRecoveries({ maxRunning: input.maxOfflineRecoveries });
      recoveriesWaiting = recoveries.waiting > 0;
    }
    if (sweeps === 1) {
      await maintenanceActivities.pruneExpiredRows({
        metricsRetentionHours: input.metricsRetentionHours,
        outboxRetentionHours: input.outboxRetentionHours,
        auditRetentionDays: input.auditRetentionDays,
        ingestionProgressRetentionHours: input.ingestionProgressRetentionHours,
        heartbeatTimeoutSeconds: input.timeoutSeconds,
        instanceDeadAfterSeconds: input.instanceDeadAfterSeconds,
      });
    }
    await condition(() => restart, `${input.intervalSeconds} seconds`);
  }
  // A monitor started before the role existed gets it at its next run.
  return makeContinueAsNewFunc<typeof heartbeatMonitorWorkflow>({ typedSearchAttributes: [workflowRole("housekeeping")] })(input);
}
