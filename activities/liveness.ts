import { Context } from "@temporalio/activity";
import { pruneMetrics } from "../core/agents/agents.js";
import { type SweepResult, sweepLiveness } from "../core/agents/liveness.js";
import { type PruneResult, pruneRetained, type RetentionSettings } from "../core/agents/retention.js";
import { pruneAuditEvents } from "../core/audit/retention.js";
import { defaultInstanceDeadAfter } from "../core/kernel/config.js";
import { AppError } from "../core/kernel/errors.js";
import { errorSummary, log } from "../core/kernel/log.js";
import { offlineServersAwaitingRecovery } from "../core/operations/offline-recovery.js";
import { startSystemServerOperation } from "../core/operations/provisioning.js";
import { timedSweep } from "../observability/metrics.js";
import type { ActivityDeps } from "./deps.js";

/** The instances that held the last sweep of this worker back, so a change is logged once, not every sweep. */
let lastHeldBy = "";

/** Says when a silent ingestion instance starts and stops holding back OFFLINE detection: an operator may need to act. */
function reportHeldBy(heldBy: SweepResult["heldBy"], deadAfterSeconds: number): void {
  const now = heldBy.map((h) => h.instanceId).join(",");
  if (now === lastHeldBy) return;
  lastHeldBy = now;
  if (heldBy.length > 0)
    log.warn("liveness held back: servers heard since these API instances stopped reporting wait until they report or are declared dead", {
      instances: heldBy.map((h) => ({
        ...h,
        declaredDeadAt: new Date(new Date(h.lastReportedAt).getTime() + deadAfterSeconds * 1000).toISOString(),
      })),
    });
  else log.info("liveness no longer held back by a silent API instance");
}

export function createLivenessActivities(deps: ActivityDeps) {
  return {
    sweepLiveness: async (input: { timeoutSeconds: number; instanceDeadAfterSeconds?: number }): Promise<SweepResult> => {
      const result = await timedSweep(() =>
        sweepLiveness(deps.db, input.timeoutSeconds, { instanceDeadAfterSeconds: input.instanceDeadAfterSeconds }),
      );
      reportHeldBy(result.heldBy, input.instanceDeadAfterSeconds ?? defaultInstanceDeadAfter(input.timeoutSeconds));
      return result;
    },

    /** Metric samples, published outbox events and gone ingestion instances past their retention. */
    pruneExpiredRows: async (
      input: Omit<RetentionSettings, "outboxRelayed"> & { metricsRetentionHours: number; auditRetentionDays?: number },
    ): Promise<PruneResult> => {
      await pruneMetrics(deps.db, new Date(Date.now() - input.metricsRetentionHours * 3600_000));
      if (input.auditRetentionDays) await pruneAuditEvents(deps.db, new Date(Date.now() - input.auditRetentionDays * 86_400_000));
      return pruneRetained(deps.db, { ...input, outboxRelayed: deps.outboxRelayed ?? true });
    },

    /**
     * Starts recovery workflows for OFFLINE servers, at most `maxRunning` recoveries
     * running at once (the rest wait for a later sweep). The workflows are started
     * here, through the worker's client, not as children of the monitor: the
     * monitor's history grows by one activity per sweep whatever the fleet's size.
     */
    startOfflineRecoveries: async (input: { maxRunning: number }): Promise<{ started: number; waiting: number }> => {
      const { candidates, waiting } = await offlineServersAwaitingRecovery(deps.db, input.maxRunning);
      const context = Context.current();
      const gateway = { client: context.client, taskQueue: context.info.taskQueue };
      let started = 0;
      for (const candidate of candidates) {
        try {
          await startSystemServerOperation(deps.db, gateway, candidate.serverId, "recovery", "offline_recovery");
          started += 1;
        } catch (error) {
          // Busy with another operation, deleted meanwhile, or Temporal did not answer: the next
          // sweep looks again. Never thrown: a retried activity would hold up the sweeps.
          if (!(error instanceof AppError))
            log.warn("recovery of an OFFLINE server not started", { serverId: candidate.serverId, ...errorSummary(error) });
        }
      }
      return { started, waiting };
    },
  };
}
