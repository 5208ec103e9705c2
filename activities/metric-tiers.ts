import { type MetricTierSettings, type RollupResult, rollUpMetrics } from "../core/agents/metric-tiers.js";
import type { ActivityDeps } from "./deps.js";

/** The metric-rollups schedule's one activity. */
export function createMetricTierActivities(deps: ActivityDeps) {
  return {
    rollUpMetrics: (settings: MetricTierSettings): Promise<RollupResult> => rollUpMetrics(deps.db, settings),
  };
}
