// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { WorkflowFailedError, type WorkflowHandle } from "@temporalio/client";
import { ApplicationFailure } from "@temporalio/common";
import type { Activities } from "../activities/index.js";
import { recordRollout, resolveRollout, rolloutInput, steerRollout } from "../core/rollouts/rollout-control.js";
import { getRolloutRow, rolloutCounts, rolloutServersOf } from "../core/rollouts/rollouts.js";
import { newId } from "../db/ids.js";
import { rolloutWorkflow } from "../workflows/rollout.js";
import type { RolloutInput } from "../workflows/rollout-definitions.js";
import { ProbeStub, seedFleet } from "./support/workflow-fleet.js";
import { startWorkflowTestbed, type WorkflowTestbed } from "./support/workflow-testbed.js";

/**
 * The rollout workflow on Temporal's time-skipping server with its real database steps (PGlite)
 * and the real per-server test-connection children; only the probe that would reach a host is a
 * stand-in (`ProbeStub`).
 */
describe("rollout workflow (time-skipping)", () => {
  let bed: WorkflowTestbed;
  before(async () => {
    bed = await startWorkflowTestbed();
  });
  after(async () => {
    await bed?.close();
  });

  const gateway = () => ({ client: bed.env.client, taskQueue: bed.taskQueue });

  /** Records a rollout over `count` fresh servers as RolloutService would, and starts its workflow with `overrides`. */
  async function startTestConnectionRollout(count: number, strategy: Record<string, unknown>, overrides: Partial<RolloutInput> = {}) {
    const fleet = await seedFleet(bed.database.db, count);
    const plan = await resolveRollout(
      bed.database.db,
      fleet.owner,
      { kind: "test_connection", target: { clusterId: fleet.cluster.id, selector: "", serverIds: [] }, strategy: strategy as never },
      10_000,
    );
    const id = newId();
    const row = await recordRollout(bed.database.db, fleet.owner, id, plan);
    const handle = await bed.env.client.workflow.start(rolloutWorkflow, {
      workflowId: row.workflowId,
      taskQueue: bed.taskQueue,
      args: [{ ...rolloutInput(id, plan), ...overrides }],
    });
    return { fleet, id, handle, batches: plan.batches };
  }

  const probeOverride = (probe: ProbeStub): Partial<Activities> => ({ testConnection: probe.activity as Activities["testConnection"] });

  test("at most `windowSize` children run at once, and every server of the batch ends", { timeout: 60_000 }, async () => {
    const probe = new ProbeStub(() => "hang");
    // The first 4 hang a while: a window that let more in would have them all in flight by then.
    void probe.whenInFlight(4).then(() => setTimeout(() => probe.release(), 2_000));
    await bed.withWorker(probeOverride(probe), async () => {
      const { handle, id } = await startTestConnectionRollout(12, { canarySize: 0, batchSize: { count: 12 } }, { windowSize: 4 });
      assert.equal((await handle.result()).status, "SUCCEEDED");
      assert.equal(probe.maxInFlight, 4, "the window filled, and never more");
      assert.equal((await rolloutCounts(bed.database.db, id)).succeeded, 12);
    });
  });

  test("200 children in flight end at the same moment: the rollout records every one", { timeout: 120_000 }, async () => {
    const probe = new ProbeStub(() => "hang");
    await bed.withWorker(probeOverride(probe), async () => {
      const { handle, id } = await startTestConnectionRollout(200, { canarySize: 0, batchSize: { count: 200 } });
      await probe.whenInFlight(200);
      probe.release();
      assert.equal((await handle.result()).status, "SUCCEEDED");
      assert.equal(probe.maxInFlight, 200);
      const counts = await rolloutCounts(bed.database.db, id);
      assert.deepEqual([counts.succeeded, counts.failed, counts.running, counts.pending], [200, 0, 0, 0]);
    });
  });

  test("the failure budget stops the rollout after the batch that spent it; later servers are never probed", {
    timeout: 60_000,
  }, async () => {
    const failing = new Set<string>();
    const probe = new ProbeStub((serverId) => (failing.has(serverId) ? "auth_failed" : "ok"));
    await bed.withWorker(probeOverride(probe), async () => {
      const started = await startTestConnectionRollout(10, { canarySize: 1, batchSize: { count: 3 }, maxFailures: { count: 2 } });
      // Canary s-0000, then batches of 3: s-0001..3 hold both failures.
      for (const s of started.fleet.servers.slice(2, 4)) failing.add(s.id);
      const failure = await endsFailed(started.handle, "RolloutFailed");
      assert.match(failure.message, /max failures 2/, "the failure names the budget");
      const row = await getRolloutRow(bed.database.db, started.id);
      assert.equal(row.status, "FAILED");
      assert.match(row.reason, /2 of 10 servers failed \(max failures 2\): stopped after batch 2 of 4; 6 servers not touched/);
      const untouched = started.fleet.servers.slice(4).map((s) => s.id);
      assert.deepEqual(
        probe.probed.filter((id) => untouched.includes(id)),
        [],
        "no server after the spent batch was probed",
      );
      const states = await rolloutServersOf(bed.database.db, started.id);
      assert.deepEqual(
        states.map((s) => s.state),
        ["SUCCEEDED", "SUCCEEDED", "FAILED", "FAILED", ...Array(6).fill("NOT_REACHED")],
      );
      for (const s of states.slice(4)) assert.equal(s.reason, "not reached: the rollout stopped after batch 2 of 4 — max failures 2");
    });
  });

  test("a failed canary with max failures 1: the one server left says why it was not reached, in the singular", {
    timeout: 60_000,
  }, async () => {
    const probe = new ProbeStub(() => "auth_failed");
    await bed.withWorker(probeOverride(probe), async () => {
      const started = await startTestConnectionRollout(2, { canarySize: 1, maxFailures: { count: 1 } });
      await endsFailed(started.handle, "RolloutFailed");
      const row = await getRolloutRow(bed.database.db, started.id);
      assert.equal(row.reason, "1 of 2 servers failed (max failures 1): stopped after batch 1 of 2; 1 server not touched");
      const states = await rolloutServersOf(bed.database.db, started.id);
      assert.deepEqual(
        states.map((s) => [s.state, s.reason]),
        [
          ["FAILED", "auth_failed: authentication failed"],
          ["NOT_REACHED", "not reached: the rollout stopped after batch 1 of 2 — max failures 1"],
        ],
      );
      assert.equal((await rolloutCounts(bed.database.db, started.id)).pending, 0, "nothing left looks queued");
    });
  });

  test("each batch is a run of its own (continue-as-new), so the history stays bounded", { timeout: 60_000 }, async () => {
    const probe = new ProbeStub(() => "ok");
    await bed.withWorker(probeOverride(probe), async () => {
      const started = await startTestConnectionRollout(6, { canarySize: 1, batchSize: { count: 2 } });
      assert.equal(started.batches.length, 4);
      assert.equal((await started.handle.result()).status, "SUCCEEDED");
      let runId: string | undefined = started.handle.firstExecutionRunId;
      const runs: number[] = [];
      while (runId) {
        const history = await bed.env.client.workflow.getHandle(started.handle.workflowId, runId).fetchHistory();
        runs.push(history.events?.length ?? 0);
        const last = history.events?.at(-1);
        runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
      }
      assert.equal(runs.length, 4, "one run per batch");
      assert.ok(Math.max(...runs) < 60, `every run's history is short (${runs.join(", ")} events)`);
      assert.equal((await getRolloutRow(bed.database.db, started.id)).status, "SUCCEEDED");
    });
  });

  test("pause after the canary holds the rollout until ResumeRollout; then it finishes", { timeout: 60_000 }, async () => {
    const probe = new ProbeStub(() => "ok");
    const paused = deferredOnce();
    const real = bed.activities.setRolloutStatus;
    const watchStatus: Partial<Activities> = {
      ...probeOverride(probe),
      async setRolloutStatus(input) {
        const changed = await real(input);
        if (input.status === "PAUSED") paused.resolve();
        return changed;
      },
    };
    await bed.withWorker(watchStatus, async () => {
      const started = await startTestConnectionRollout(5, { canarySize: 1, batchSize: { count: 2 }, pauseAfterCanary: true });
      await paused.promise;
      const row = await getRolloutRow(bed.database.db, started.id);
      assert.equal(row.status, "PAUSED");
      assert.match(row.reason, /paused after the canary/);
      assert.equal(probe.probed.length, 1, "only the canary ran");
      await steerRollout(bed.database.db, gateway(), started.fleet.owner, started.id, "resume");
      assert.equal((await started.handle.result()).status, "SUCCEEDED");
      assert.equal(probe.probed.length, 5);
    });
  });

  test("abort cancels the running children, starts no other, marks the untouched servers NOT_REACHED, and ends the workflow failed", {
    timeout: 60_000,
  }, async () => {
    const probe = new ProbeStub(() => "hang");
    await bed.withWorker(probeOverride(probe), async () => {
      const started = await startTestConnectionRollout(8, { canarySize: 0, batchSize: { count: 4 } });
      await probe.whenInFlight(4);
      await steerRollout(bed.database.db, gateway(), started.fleet.owner, started.id, "abort", "wrong image");
      const row = await getRolloutRow(bed.database.db, started.id);
      assert.equal(row.status, "ABORTED");
      assert.equal(row.reason, "wrong image");
      assert.equal(probe.cancelled, 4, "each running probe heard the cancellation");
      assert.equal(probe.probed.length, 4, "no server of the next batch was started");
      const states = (await rolloutServersOf(bed.database.db, started.id)).map((s) => [s.state, s.reason]);
      assert.deepEqual(states.slice(4), Array(4).fill(["NOT_REACHED", "not reached: aborted after batch 1 of 2 — wrong image"]));
      assert.deepEqual(
        states.slice(0, 4).map(([state]) => state),
        Array(4).fill("CANCELLED"),
      );
      const failure = await endsFailed(started.handle, "RolloutAborted");
      assert.match(failure.message, /wrong image/);
      await expectCode(steerRollout(bed.database.db, gateway(), started.fleet.owner, started.id, "resume"), "failed_precondition");
    });
  });
});

/** The run closed FAILED in Temporal (what the Web UI shows in red) with a non-retryable failure of this type; answers it. */
async function endsFailed(handle: WorkflowHandle, type: string): Promise<ApplicationFailure> {
  const error = await handle.result().then(
    (result) => assert.fail(`the workflow completed: ${JSON.stringify(result)}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof WorkflowFailedError, String(error));
  const cause = error.cause;
  assert.ok(cause instanceof ApplicationFailure, String(cause));
  assert.equal(cause.type, type);
  assert.equal(cause.nonRetryable, true);
  assert.equal((await handle.describe()).status.name, "FAILED");
  return cause;
}

function deferredOnce(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

async function expectCode(call: Promise<unknown>, kind: string): Promise<void> {
  await assert.rejects(call, (error: { kind?: string }) => error.kind === kind);
}
