import { type Client, ScheduleAlreadyRunning, ScheduleOverlapPolicy } from "@temporalio/client";
import type { MetricTierSettings } from "../core/agents/metric-tiers.js";
import { log } from "../core/kernel/log.js";
import { systemWorkflows } from "../workflows/contract.js";
import { workflowRole } from "./search-attributes.js";

export const FLEET_CHECK_SCHEDULE_ID = "fleet-check";

/** Creates the fleet-check schedule, or brings an existing one to the configured cron. Safe to call at every start. */
export async function ensureFleetCheckSchedule(client: Client, options: { cron: string; taskQueue: string }): Promise<void> {
  const spec = { cronExpressions: [options.cron] };
  const action = {
    type: "startWorkflow" as const,
    workflowType: systemWorkflows.fleetCheck,
    workflowId: "fleet-check",
    taskQueue: options.taskQueue,
    args: [{}] as [Record<string, never>],
    typedSearchAttributes: [workflowRole("housekeeping")],
    staticSummary: "Periodic fleet check: test every server, recover what is broken",
  };
  try {
    await client.schedule.create({
      scheduleId: FLEET_CHECK_SCHEDULE_ID,
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: "1 minute" },
    });
    log.info("fleet-check schedule created", { cron: options.cron });
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
    await client.schedule.getHandle(FLEET_CHECK_SCHEDULE_ID).update((previous) => ({ ...previous, spec, action }));
  }
}

export const RECONCILER_SCHEDULE_ID = "operations-reconciler";

/**
 * Creates the operations-reconciler schedule (every `intervalSeconds`, overlap
 * skipped), or brings an existing one to this interval. Safe at every start.
 */
export async function ensureReconcilerSchedule(client: Client, options: { intervalSeconds: number; taskQueue: string }): Promise<void> {
  const spec = { intervals: [{ every: `${options.intervalSeconds} seconds` as const }] };
  const action = {
    type: "startWorkflow" as const,
    workflowType: systemWorkflows.reconcileOperations,
    workflowId: RECONCILER_SCHEDULE_ID,
    taskQueue: options.taskQueue,
    args: [{}] as [Record<string, never>],
    typedSearchAttributes: [workflowRole("housekeeping")],
    staticSummary: "Operations reconciler: end operations whose workflow is gone, free servers they left in transition",
  };
  try {
    await client.schedule.create({
      scheduleId: RECONCILER_SCHEDULE_ID,
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: "1 minute" },
    });
    log.info("operations-reconciler schedule created", { intervalSeconds: options.intervalSeconds });
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
    await client.schedule.getHandle(RECONCILER_SCHEDULE_ID).update((previous) => ({ ...previous, spec, action }));
  }
}

export const METRIC_ROLLUP_SCHEDULE_ID = "metric-rollups";

/**
 * Creates the metric-rollups schedule (every `intervalSeconds`, overlap
 * skipped), or brings an existing one to this interval and these retentions.
 * Safe at every start.
 */
export async function ensureMetricRollupSchedule(
  client: Client,
  options: { intervalSeconds: number; taskQueue: string; settings: MetricTierSettings },
): Promise<void> {
  const spec = { intervals: [{ every: `${options.intervalSeconds} seconds` as const }] };
  const action = {
    type: "startWorkflow" as const,
    workflowType: systemWorkflows.rollUpMetrics,
    workflowId: METRIC_ROLLUP_SCHEDULE_ID,
    taskQueue: options.taskQueue,
    args: [{ settings: options.settings }] as [{ settings: MetricTierSettings }],
    typedSearchAttributes: [workflowRole("housekeeping")],
    staticSummary: "Metric history: roll raw heartbeat samples up into minute and hour buckets, prune every tier",
  };
  try {
    await client.schedule.create({
      scheduleId: METRIC_ROLLUP_SCHEDULE_ID,
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: "1 minute" },
    });
    log.info("metric-rollups schedule created", { intervalSeconds: options.intervalSeconds });
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
    await client.schedule.getHandle(METRIC_ROLLUP_SCHEDULE_ID).update((previous) => ({ ...previous, spec, action }));
  }
}
