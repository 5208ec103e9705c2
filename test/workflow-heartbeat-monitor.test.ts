// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Activities } from "../activities/index.js";
import type { SweepResult } from "../core/agents/liveness.js";
import { ensureHeartbeatMonitor, HEARTBEAT_MONITOR_ID } from "../temporal/heartbeat-monitor.js";
import type { HeartbeatMonitorInput } from "../workflows/definitions.js";
import { startWorkflowTestbed, type WorkflowTestbed } from "./support/workflow-testbed.js";

type Recoveries = { started: number; waiting: number };

/**
 * The liveness activities as the database would answer them, scripted per sweep (the sweep's
 * SQL, its grace after an outage included, is tested on PGlite and PostgreSQL in
 * test/liveness.test.ts): records what the monitor asked for and after which sweep.
 */
class LivenessScript {
  readonly sweeps: { timeoutSeconds: number; instanceDeadAfterSeconds?: number }[] = [];
  /** The sweep number each recovery start followed. */
  readonly recoveriesAfter: number[] = [];
  readonly prunesAfter: number[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  constructor(
    private readonly wentOffline: (sweep: number) => number,
    private readonly recoveries: (call: number) => Recoveries = () => ({ started: 0, waiting: 0 }),
  ) {}

  whenSwept(count: number): Promise<void> {
    if (this.sweeps.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  activities(): Partial<Activities> {
    return {
      sweepLiveness: async (input): Promise<SweepResult> => {
        this.sweeps.push(input);
        const offline = this.wentOffline(this.sweeps.length);
        for (const w of this.waiters.filter((w) => this.sweeps.length >= w.count)) w.resolve();
        return { offline, offlineIds: [], online: 0, heldBy: [] };
      },
      startOfflineRecoveries: async () => {
        this.recoveriesAfter.push(this.sweeps.length);
        return this.recoveries(this.recoveriesAfter.length);
      },
      pruneExpiredRows: async () => {
        this.prunesAfter.push(this.sweeps.length);
        return {} as Awaited<ReturnType<Activities["pruneExpiredRows"]>>;
      },
    } as Partial<Activities>;
  }
}

const settings: HeartbeatMonitorInput = {
  timeoutSeconds: 30,
  intervalSeconds: 10,
  recoverOffline: true,
  maxOfflineRecoveries: 2,
  metricsRetentionHours: 24,
  outboxRetentionHours: 24,
  ingestionProgressRetentionHours: 24,
  instanceDeadAfterSeconds: 300,
};

/**
 * The heartbeat monitor (workflows/heartbeat-monitor.ts) on the time-skipping server, started as
 * a worker starts it (`ensureHeartbeatMonitor`), with its liveness activities scripted. After an
 * outage of ingestion the sweep marks nothing OFFLINE for a timeout (the grace); the monitor's
 * part is to keep sweeping through it, to start the recoveries of the servers that go OFFLINE
 * when it ends, and not to forget the recoveries still waiting from before.
 */
describe("heartbeat monitor after an outage (time-skipping)", () => {
  let bed: WorkflowTestbed;
  before(async () => {
    bed = await startWorkflowTestbed();
  });
  after(async () => {
    await bed?.close();
  });

  /** Runs the monitor until it has swept `sweeps` times (time skipped meanwhile), then ends it. */
  async function monitor(script: LivenessScript, sweeps: number, during?: () => Promise<void>) {
    await bed.withWorker(script.activities(), async () => {
      await ensureHeartbeatMonitor(bed.env.client, bed.taskQueue, settings);
      const handle = bed.env.client.workflow.getHandle(HEARTBEAT_MONITOR_ID);
      // Awaiting the result lets the server skip time over the sweep timers; the monitor never ends by itself.
      const running = handle.result().catch(() => undefined);
      await during?.();
      await Promise.race([script.whenSwept(sweeps), running]);
      // Cancelled, not terminated: a run terminated during a workflow task keeps the test server from skipping time.
      await handle.cancel();
      await running;
    });
  }

  test("the monitor sweeps through the grace, and the sweep that first finds servers OFFLINE starts their recoveries", {
    timeout: 60_000,
  }, async () => {
    // Sweeps 1-3 fall in the grace after the outage (nothing OFFLINE); at sweep 4 it has ended.
    const script = new LivenessScript((sweep) => (sweep === 4 ? 3 : 0));
    await monitor(script, 7);
    assert.ok(script.sweeps.length >= 7, "the monitor kept sweeping");
    assert.deepEqual(
      script.recoveriesAfter.filter((s) => s <= 6),
      [1, 4],
      "recoveries looked for at the first sweep and right after the one that found servers OFFLINE, not between",
    );
  });

  test("recoveries left waiting before the outage are started although the grace marks nothing OFFLINE", {
    timeout: 60_000,
  }, async () => {
    // The database still holds OFFLINE servers whose recoveries waited for a free slot (2 at a time).
    const waiting = [3, 1, 0];
    const script = new LivenessScript(
      () => 0,
      (call) => ({ started: 2, waiting: waiting[call - 1] ?? 0 }),
    );
    await monitor(script, 6);
    assert.deepEqual(
      script.recoveriesAfter.filter((s) => s <= 5),
      [1, 2, 3],
      "one start per sweep until none waits, then none",
    );
  });

  test("a worker back after the outage hands over its settings: the next run sweeps with them, prunes, and looks for recoveries", {
    timeout: 60_000,
  }, async () => {
    const script = new LivenessScript(() => 0);
    const restarted = { ...settings, timeoutSeconds: 45, instanceDeadAfterSeconds: 900 };
    await monitor(script, 6, async () => {
      await script.whenSwept(3);
      await ensureHeartbeatMonitor(bed.env.client, bed.taskQueue, restarted);
    });
    const first = script.sweeps[0]!;
    assert.deepEqual(first, { timeoutSeconds: 30, instanceDeadAfterSeconds: 300 });
    const switched = script.sweeps.findIndex((s) => s.timeoutSeconds === 45);
    assert.ok(switched >= 3, "the new settings took over after the signal");
    assert.deepEqual(
      script.sweeps.slice(switched),
      script.sweeps.slice(switched).map(() => ({ timeoutSeconds: 45, instanceDeadAfterSeconds: 900 })),
      "every later sweep holds silent API instances back for the new time",
    );
    assert.deepEqual(script.prunesAfter, [1, switched + 1], "each run prunes at its first sweep");
    assert.deepEqual(
      script.recoveriesAfter.filter((s) => s <= switched + 1),
      [1, switched + 1],
      "each run looks for recoveries waiting at its first sweep",
    );
  });
});
