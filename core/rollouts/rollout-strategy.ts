import { AppError } from "../kernel/errors.js";
import type { BusyPolicy } from "../kernel/kinds.js";

/**
 * How a rollout cuts its servers into batches and when it stops: pure
 * functions, no I/O. The API validates a strategy here once; the workflow
 * carries the normalised form.
 */

/** A number of servers, absolute or a percentage of the rollout's targets. */
export type Amount = { count: number } | { percent: number };

/** As a client sends it (proto fields, absent = default). */
export interface StrategyInput {
  canarySize?: number;
  batchSize?: Partial<{ count: number; percent: number }>;
  maxFailures?: Partial<{ count: number; percent: number }>;
  batchPauseSeconds?: number;
  pauseAfterCanary?: boolean;
  busyPolicy?: BusyPolicy;
  busyWaitSeconds?: number;
}

/** With every default filled in. `batchSize` absent: all servers after the canary in one batch. */
export interface RolloutStrategy {
  canarySize: number;
  batchSize?: Amount;
  maxFailures: Amount;
  batchPauseSeconds: number;
  pauseAfterCanary: boolean;
  busyPolicy: BusyPolicy;
  busyWaitSeconds: number;
}

export const DEFAULT_BUSY_WAIT_SECONDS = 30 * 60;
const MAX_PAUSE_SECONDS = 7 * 24 * 3600;
const MAX_BUSY_WAIT_SECONDS = 24 * 3600;
const MAX_COUNT = 1_000_000;

function amount(field: string, value: StrategyInput["batchSize"]): Amount | undefined {
  if (value === undefined) return undefined;
  if (value.count !== undefined) {
    if (!Number.isInteger(value.count) || value.count < 1 || value.count > MAX_COUNT)
      throw AppError.invalid(`${field}.count`, `must be between 1 and ${MAX_COUNT}`);
    return { count: value.count };
  }
  if (value.percent !== undefined) {
    if (!Number.isInteger(value.percent) || value.percent < 1 || value.percent > 100)
      throw AppError.invalid(`${field}.percent`, "must be between 1 and 100");
    return { percent: value.percent };
  }
  throw AppError.invalid(field, "set count or percent");
}

function seconds(field: string, value: number | undefined, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value < 0 || value > max) throw AppError.invalid(field, `must be between 0 and ${max} seconds`);
  return value;
}

/** InvalidArgument naming the field (`strategy.batch_size.percent`) for anything out of range. */
export function normaliseStrategy(input: StrategyInput = {}): RolloutStrategy {
  const canarySize = input.canarySize ?? 1;
  if (!Number.isInteger(canarySize) || canarySize < 0 || canarySize > MAX_COUNT)
    throw AppError.invalid("strategy.canary_size", `must be between 0 and ${MAX_COUNT}`);
  const pauseAfterCanary = input.pauseAfterCanary ?? false;
  if (pauseAfterCanary && canarySize === 0)
    throw AppError.invalid("strategy.pause_after_canary", "needs a canary batch (canary_size at least 1)");
  const busyPolicy = input.busyPolicy ?? "skip";
  const busyWait = seconds("strategy.busy_wait_timeout", input.busyWaitSeconds, MAX_BUSY_WAIT_SECONDS);
  if (busyWait !== undefined && busyPolicy !== "wait")
    throw AppError.invalid("strategy.busy_wait_timeout", "applies only with busy_policy BUSY_SERVER_POLICY_WAIT");
  if (busyWait === 0) throw AppError.invalid("strategy.busy_wait_timeout", "must be more than 0 seconds");
  return {
    canarySize,
    batchSize: amount("strategy.batch_size", input.batchSize),
    maxFailures: amount("strategy.max_failures", input.maxFailures) ?? { count: 1 },
    batchPauseSeconds: seconds("strategy.batch_pause", input.batchPauseSeconds, MAX_PAUSE_SECONDS) ?? 0,
    pauseAfterCanary,
    busyPolicy,
    busyWaitSeconds: busyWait ?? DEFAULT_BUSY_WAIT_SECONDS,
  };
}

/** An amount as a number of servers out of `total`: a percentage is rounded up, and is at least 1. */
export function resolveAmount(value: Amount, total: number): number {
  if ("count" in value) return value.count;
  return Math.max(1, Math.ceil((total * value.percent) / 100));
}

/** The failure budget: the rollout stops once this many servers have failed. */
export function failureBudget(strategy: RolloutStrategy, total: number): number {
  return resolveAmount(strategy.maxFailures, total);
}

/** Batch sizes in order: the canary (when there is one), then batches of batch_size, the last one possibly smaller. */
export function batchSizes(strategy: RolloutStrategy, total: number): number[] {
  const sizes: number[] = [];
  let left = total;
  const canary = Math.min(strategy.canarySize, left);
  if (canary > 0) {
    sizes.push(canary);
    left -= canary;
  }
  const size = strategy.batchSize ? resolveAmount(strategy.batchSize, total) : left;
  while (left > 0) {
    const next = Math.min(size, left);
    sizes.push(next);
    left -= next;
  }
  return sizes;
}

/** The targets cut into batches, in their order. */
export function cutBatches<T>(strategy: RolloutStrategy, targets: readonly T[]): T[][] {
  const batches: T[][] = [];
  let at = 0;
  for (const size of batchSizes(strategy, targets.length)) {
    batches.push(targets.slice(at, at + size));
    at += size;
  }
  return batches;
}

/** Whether the failures so far stop the rollout. */
export function budgetExhausted(strategy: RolloutStrategy, total: number, failed: number): boolean {
  return failed >= failureBudget(strategy, total);
}
