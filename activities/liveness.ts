import { Context } from "@temporalio/activity";
import { pruneMetrics } from "../core/agents.js";
import { AppError } from "../core/errors.js";
import { type SweepResult, sweepLiveness } from "../core/liveness.js";
import { errorSummary, log } from "../core/log.js";
import { offlineServersAwaitingRecovery } from "../core/offline-recovery.js";
import { startSystemServerOperation } from "../core/provisioning.js";
import { type PruneResult, pruneRetained, type RetentionSettings } from "../core/retention.js";
import { timedSweep } from "../observability/metrics.js";
import type { ActivityDeps } from "./deps.js";

export function createLivenessActivities(deps: ActivityDeps) {
  return {
    sweepLiveness: (input: { timeoutSeconds: number }): Promise<SweepResult> =>
      timedSweep(() => sweepLiveness(deps.db, input.timeoutSeconds)),

    /** Metric samples, published outbox events and gone ingestion instances past their retention. */
    pruneExpiredRows: async (input: Omit<RetentionSettings, "outboxRelayed"> & { metricsRetentionHours: number }): Promise<PruneResult> => {
      await pruneMetrics(deps.db, new Date(Date.now() - input.metricsRetentionHours * 3600_000));
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
