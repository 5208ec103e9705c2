import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NativeConnection, Worker } from "@temporalio/worker";
import { type ActivityDeps, createActivities } from "../activities/index.js";
import { SshShares } from "../activities/ssh/owner-shares.js";
import { SshSessionPool } from "../activities/ssh/pool.js";
import { workerObservability } from "../observability/worker-interceptors.js";

export const workflowsPath = join(dirname(fileURLToPath(import.meta.url)), "..", "workflows", "index.ts");

export interface WorkerOptions {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Consecutive steps of a workflow run share SSH sessions (default true; the benchmark compares both). */
  reuseSshSessions?: boolean;
  /** Workflow code to run (default workflows/index.ts); tests run an earlier version to play an upgrade. */
  workflowsPath?: string;
  /**
   * After `shutdown()`, how long running activities may take to finish (default 0: cancelled at
   * once). Past it they are cancelled, and Temporal retries them on another worker.
   */
  shutdownGraceSeconds?: number;
}

/** Worker settings beyond the wiring (the benchmarks run workers with the same ones). */
export const workerTuning = {
  // Heartbeats reach the server at most this far apart: a cancelled SSH step hears of it within seconds.
  maxHeartbeatThrottleInterval: "3 seconds",
} satisfies Partial<Parameters<typeof Worker.create>[0]>;

/**
 * A worker polling the provisioning task queue. `run()` resolves after
 * `worker.shutdown()`, with the SSH sessions its activities kept closed.
 */
export async function createWorker(
  options: WorkerOptions,
  deps: ActivityDeps,
): Promise<{ worker: Worker; connection: NativeConnection; run: () => Promise<void> }> {
  const connection = await NativeConnection.connect({ address: options.address });
  const sshSessions = options.reuseSshSessions === false ? undefined : (deps.sshSessions ?? new SshSessionPool());
  const worker = await Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowsPath: options.workflowsPath ?? workflowsPath,
    activities: createActivities({ ...deps, sshSessions, sshShares: deps.sshShares ?? new SshShares() }),
    ...workerTuning,
    ...workerObservability(),
    shutdownGraceTime: (options.shutdownGraceSeconds ?? 0) * 1000,
    // Cancelled activities get this long more to stop (an SSH step hears of it within seconds), then the worker gives up.
    shutdownForceTime: ((options.shutdownGraceSeconds ?? 0) + 15) * 1000,
  });
  const run = () => worker.run().finally(() => sshSessions?.closeAll());
  return { worker, connection, run };
}
