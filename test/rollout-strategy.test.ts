// test lane: fast
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AppError } from "../core/kernel/errors.js";
import {
  batchSizes,
  budgetExhausted,
  cutBatches,
  failureBudget,
  normaliseStrategy,
  type StrategyInput,
} from "../core/rollouts/rollout-strategy.js";

const invalid = (input: StrategyInput, field: string) =>
  assert.throws(
    () => normaliseStrategy(input),
    (e: unknown) => e instanceof AppError && e.kind === "invalid_argument" && e.field === field,
    `${JSON.stringify(input)} names ${field}`,
  );

describe("rollout strategy: batches and the failure budget", () => {
  test("defaults: a canary of one, then everything else in one batch; the first failure stops it", () => {
    const s = normaliseStrategy();
    assert.deepEqual(batchSizes(s, 10), [1, 9]);
    assert.equal(failureBudget(s, 10), 1);
    assert.equal(s.busyPolicy, "skip");
  });

  test("canary 1, batch 2 over 6 servers: 1, 2, 2, 1 in target order", () => {
    const s = normaliseStrategy({ canarySize: 1, batchSize: { count: 2 } });
    assert.deepEqual(cutBatches(s, ["a", "b", "c", "d", "e", "f"]), [["a"], ["b", "c"], ["d", "e"], ["f"]]);
  });

  test("percentages are of all targets, rounded up, at least one server", () => {
    const s = normaliseStrategy({ canarySize: 0, batchSize: { percent: 20 }, maxFailures: { percent: 10 } });
    assert.deepEqual(batchSizes(s, 10), [2, 2, 2, 2, 2]);
    assert.deepEqual(batchSizes(s, 7), [2, 2, 2, 1]);
    assert.equal(failureBudget(s, 7), 1);
    assert.equal(failureBudget(s, 2000), 200);
    assert.deepEqual(batchSizes(normaliseStrategy({ batchSize: { percent: 1 } }), 3), [1, 1, 1]);
  });

  test("a canary larger than the fleet takes it all; no targets, no batches", () => {
    const s = normaliseStrategy({ canarySize: 5, batchSize: { count: 2 } });
    assert.deepEqual(batchSizes(s, 3), [3]);
    assert.deepEqual(batchSizes(s, 0), []);
  });

  test("the rollout stops once the failures reach the budget", () => {
    const s = normaliseStrategy({ maxFailures: { count: 2 } });
    assert.equal(budgetExhausted(s, 6, 1), false);
    assert.equal(budgetExhausted(s, 6, 2), true);
  });

  test("out-of-range fields are InvalidArgument naming the proto field", () => {
    invalid({ canarySize: -1 }, "strategy.canary_size");
    invalid({ batchSize: {} }, "strategy.batch_size");
    invalid({ batchSize: { count: 0 } }, "strategy.batch_size.count");
    invalid({ batchSize: { percent: 0 } }, "strategy.batch_size.percent");
    invalid({ batchSize: { percent: 101 } }, "strategy.batch_size.percent");
    invalid({ maxFailures: { count: 0 } }, "strategy.max_failures.count");
    invalid({ maxFailures: { percent: 150 } }, "strategy.max_failures.percent");
    invalid({ batchPauseSeconds: -1 }, "strategy.batch_pause");
    invalid({ batchPauseSeconds: 8 * 24 * 3600 }, "strategy.batch_pause");
    invalid({ canarySize: 0, pauseAfterCanary: true }, "strategy.pause_after_canary");
    invalid({ busyWaitSeconds: 60 }, "strategy.busy_wait_timeout");
    invalid({ busyPolicy: "wait", busyWaitSeconds: 0 }, "strategy.busy_wait_timeout");
  });
});
