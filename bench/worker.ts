/**
 * The Axion worker for bench/bootstrap.ts, in its own process so that its peak memory
 * (/proc/<pid>/status VmHWM) is the worker's alone. Same wiring as app/service.ts:
 * PostgreSQL (DATABASE_URL), the real activities, temporal/worker.ts's createWorker.
 *
 * Env: BENCH_TEMPORAL_ADDRESS, BENCH_TEMPORAL_NAMESPACE, BENCH_TASK_QUEUE, BENCH_DATABASE_URL,
 * BENCH_CREDENTIALS_KEY, BENCH_ORCHESTRATOR_KEY, BENCH_SSH_CONNECT_TIMEOUT_MS (default 10000,
 * the service's default), BENCH_SERVER_ADDRESS_ALLOW (CIDRs, comma-separated; default: the built-in
 * policy). Sends {ready: true} over IPC once polling; SIGTERM shuts it down.
 */

import { setLogLevel } from "../core/kernel/log.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { openDatabase } from "../db/client.js";
import { installRuntime } from "../temporal/runtime.js";
import { createWorker } from "../temporal/worker.js";
import { allowPolicy } from "./stack.js";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`bench worker: ${name} is not set`);
  return value;
}

setLogLevel("warn");
// The service's runtime: the SDK's logs on pino (app/main.ts), here at warn.
installRuntime();

const database = await openDatabase({ databaseUrl: env("BENCH_DATABASE_URL"), dataDir: "memory://" });
const { worker, connection, run } = await createWorker(
  {
    address: env("BENCH_TEMPORAL_ADDRESS"),
    namespace: env("BENCH_TEMPORAL_NAMESPACE"),
    taskQueue: env("BENCH_TASK_QUEUE"),
    reuseSshSessions: process.env.BENCH_SSH_REUSE !== "0",
  },
  {
    db: database.db,
    cipher: createCredentialsCipher(env("BENCH_CREDENTIALS_KEY")),
    orchestratorPublicKey: env("BENCH_ORCHESTRATOR_KEY"),
    adminUser: "axion",
    sshConnectTimeoutMs: Number(process.env.BENCH_SSH_CONNECT_TIMEOUT_MS ?? 10_000),
    networkPolicy: allowPolicy(process.env.BENCH_SERVER_ADDRESS_ALLOW?.split(",")),
  },
);
const running = run();
process.on("SIGTERM", () => {
  if (worker.getState() === "RUNNING") worker.shutdown();
});
while (worker.getState() === "INITIALIZED") await new Promise((r) => setTimeout(r, 20));
if (worker.getState() !== "RUNNING") throw new Error(`bench worker did not start: ${worker.getState()}`);
process.send?.({ ready: true });
await running;
await connection.close();
await database.close();
process.disconnect?.();
