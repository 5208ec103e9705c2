import { pruneMetrics } from "../core/agents.js";
import { type SweepResult, sweepLiveness } from "../core/liveness.js";
import type { ActivityDeps } from "./deps.js";

export function createLivenessActivities(deps: ActivityDeps) {
  return {
    sweepLiveness: (input: { timeoutSeconds: number }): Promise<SweepResult> => sweepLiveness(deps.db, input.timeoutSeconds),
    pruneMetrics: async (input: { retentionHours: number }): Promise<void> => {
      await pruneMetrics(deps.db, new Date(Date.now() - input.retentionHours * 3600_000));
    },
  };
}
