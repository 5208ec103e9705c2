// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
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
      const result = await started.handle.result();
      assert.equal(result.status, "FAILED");
      assert.match(result.reason, /2 of 10 servers failed \(max failures 2\): stopped after batch 2 of 4; 6 servers not touched/);
      const untouched = started.fleet.servers.slice(4).map((s) => s.id);
      assert.deepEqual(
        probe.probed.filter((id) => untouched.includes(id)),
        [],
        "no server after the spent batch was probed",
      );
      const states = await rolloutServersOf(bed.database.db, started.id);
      assert.deepEqual(
        states.map((s) => s.state),
        ["SUCCEEDED", "SUCCEEDED", "FAILED", "FAILED", "PENDING", "PENDING", "PENDING", "PENDING", "PENDING", "PENDING"],
      );
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

  test("abort cancels the running children, starts no other, and leaves the untouched servers PENDING", { timeout: 60_000 }, async () => {
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
      const states = (await rolloutServersOf(bed.database.db, started.id)).map((s) => s.state);
      assert.deepEqual(states, ["CANCELLED", "CANCELLED", "CANCELLED", "CANCELLED", "PENDING", "PENDING", "PENDING", "PENDING"]);
      await expectCode(steerRollout(bed.database.db, gateway(), started.fleet.owner, started.id, "resume"), "failed_precondition");
    });
  });
});

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
