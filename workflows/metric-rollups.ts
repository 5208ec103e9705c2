import type { MetricTierSettings, RollupResult } from "../core/agents/metric-tiers.js";
import { maintenanceActivities } from "./proxies.js";

export interface MetricRollupInput {
  /** Retention of each tier, from the configuration of the worker that last created or updated the schedule. */
  settings: MetricTierSettings;
}

/**
 * Run by the `metric-rollups` Schedule (a system workflow, no owner): rolls
 * raw heartbeat samples up into one-minute and one-hour buckets once they have
 * settled, then prunes each tier past its retention.
 */
export async function rollUpMetricsWorkflow(input: MetricRollupInput): Promise<RollupResult> {
  return maintenanceActivities.rollUpMetrics(input.settings);
}
