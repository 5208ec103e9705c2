import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NativeConnection, Worker } from "@temporalio/worker";
import { type ActivityDeps, createActivities } from "../activities/index.js";

const workflowsPath = join(dirname(fileURLToPath(import.meta.url)), "..", "workflows", "index.ts");

export interface WorkerOptions {
  address: string;
  namespace: string;
  taskQueue: string;
}

/** A worker polling the provisioning task queue; `run()` resolves after `shutdown()`. */
export async function createWorker(options: WorkerOptions, deps: ActivityDeps): Promise<{ worker: Worker; connection: NativeConnection }> {
  const connection = await NativeConnection.connect({ address: options.address });
  const worker = await Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowsPath,
    activities: createActivities(deps),
  });
  return { worker, connection };
}
