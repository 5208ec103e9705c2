/**
 * Temporal's share of a bootstrap, without hosts (`node --import tsx bench/temporal-overhead.ts`):
 * the real bootstrap workflow (workflows/index.ts) on N servers at once, in a worker with the
 * service's tuning (temporal/worker.ts) whose activities only wait (and heartbeat) instead of
 * running SSH steps or SQL. Prints the CPU of the Temporal dev server, the worker and this process
 * (the client) per workflow, so settings of either side can be compared in seconds, not minutes.
 *
 *   node --import tsx bench/temporal-overhead.ts [--n 50] [--step-ms 3000] [--dev-args "--flag=v ..."] [--queries 20]
 *        [--observability] [--profile-worker <dir>]
 *
 * --observability: the worker with the service's runtime logger and interceptors (default: the SDK's bare logger).
 * --profile-worker <dir>: the worker under node --cpu-prof (bench/profile-summary.ts with the printed window).
 * --queries Q: a second phase on N more workflows while the client asks Q running ones for their
 * progress every second, as WatchRollout does for the first 20 running servers; prints what a query costs.
 *
 * --dev-args: extra `temporal server start-dev` flags on top of temporal-dev.yml's, to try settings.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Context } from "@temporalio/activity";
import { Client, Connection } from "@temporalio/client";
import { DefaultLogger, NativeConnection, Runtime, Worker } from "@temporalio/worker";
import { setLogLevel } from "../core/kernel/log.js";
import { workerObservability } from "../observability/worker-interceptors.js";
import { startDevServer } from "../temporal/dev-server.js";
import { installRuntime } from "../temporal/runtime.js";
import { workerTuning, workflowsPath } from "../temporal/worker.js";
import { freePort } from "../test/support/ports.js";
import { processCpuS, threadCpuS } from "./cpu.js";

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const here = fileURLToPath(import.meta.url);
const taskQueue = "axion-overhead";

if (args[0] === "--worker") {
  // The child: the real workflows, activities that wait like SSH steps do (heartbeating every 3 s).
  // --observability: the service's runtime logger (pino) and worker interceptors (log context), as temporal/worker.ts wires them.
  const observability = process.env.OVERHEAD_OBSERVABILITY === "1";
  if (observability) {
    setLogLevel("warn");
    installRuntime();
  } else Runtime.install({ logger: new DefaultLogger("WARN") });
  const stepMs = Number(process.env.OVERHEAD_STEP_MS ?? 3000);
  const wait = async () => {
    const context = Context.current();
    context.heartbeat();
    const timer = setInterval(() => context.heartbeat(), 3000);
    try {
      await new Promise((r) => setTimeout(r, stepMs * (0.5 + Math.random())));
    } finally {
      clearInterval(timer);
    }
    return { changed: false, detail: "unchanged" };
  };
  const activities = {
    setServerStatus: async () => ({ written: true }),
    claimOperation: async () => true,
    finishOperation: async () => {},
    connect: wait,
    preflight: async () => ({
      ...(await wait()),
      osId: "debian",
      osVersionId: "12",
      osPrettyName: "Debian 12",
      arch: "x86_64",
      rootFreeMb: 1000,
      dockerVersion: "24",
    }),
    ensureAdminUser: wait,
    ensureDocker: wait,
    ensureFirewall: wait,
    hardenSsh: wait,
    setDeployKey: wait,
    installAgent: async () => ({ ...(await wait()), skipped: true }),
  };
  const connection = await NativeConnection.connect({ address: process.env.OVERHEAD_ADDRESS! });
  const worker = await Worker.create({
    connection,
    namespace: process.env.OVERHEAD_NAMESPACE!,
    taskQueue,
    workflowsPath,
    activities,
    ...workerTuning,
    ...(observability ? workerObservability() : {}),
    ...(process.env.OVERHEAD_HEARTBEAT_THROTTLE ? { maxHeartbeatThrottleInterval: process.env.OVERHEAD_HEARTBEAT_THROTTLE } : {}),
  });
  process.on("SIGTERM", () => worker.shutdown());
  const running = worker.run();
  while (worker.getState() === "INITIALIZED") await new Promise((r) => setTimeout(r, 20));
  process.send?.({ ready: true });
  await running;
  await connection.close();
  process.disconnect?.();
} else {
  const n = Number(option("--n") ?? 50);
  const stepMs = Number(option("--step-ms") ?? 3000);
  const devArgs = (option("--dev-args") ?? "").split(/\s+/).filter(Boolean);
  const dataDir = mkdtempSync(join(tmpdir(), "axion-overhead-"));
  const dev = await startDevServer(dataDir, { port: await freePort(), uiPort: await freePort(), headless: true, extraArgs: devArgs });
  const connection = await Connection.connect({ address: dev.address });
  const client = new Client({ connection, namespace: dev.spec.namespace });
  const profileDir = option("--profile-worker");
  const profileArgs = profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [];
  const worker: ChildProcess = spawn(process.execPath, [...profileArgs, "--import", "tsx", here, "--worker"], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: {
      ...process.env,
      OVERHEAD_ADDRESS: dev.address,
      OVERHEAD_NAMESPACE: dev.spec.namespace,
      OVERHEAD_STEP_MS: String(stepMs),
      OVERHEAD_OBSERVABILITY: args.includes("--observability") ? "1" : "0",
    },
  });
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("exit", (code) => reject(new Error(`worker exited with ${code}`)));
    });
    // Warm up: one workflow, so that bundling and first-run costs stay out of the figures.
    let queries = 0;
    const run = async (prefix: string, count: number, queriesPerSecond = 0) => {
      const handles = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          client.workflow.start("bootstrapWorkflow", {
            workflowId: `${prefix}-${i}`,
            taskQueue,
            args: [{ operationId: `${prefix}-op-${i}`, serverId: `${prefix}-server-${i}` }],
            typedSearchAttributes: [],
          }),
        ),
      );
      const running = new Set(handles);
      let asking = true;
      const asker = (async () => {
        while (asking && queriesPerSecond > 0) {
          const tick = new Promise((r) => setTimeout(r, 1000));
          await Promise.all(
            [...running].slice(0, queriesPerSecond).map((h) => {
              queries++;
              return h.query("progress").catch(() => undefined);
            }),
          );
          await tick;
        }
      })();
      await Promise.all(handles.map((h) => h.result().finally(() => running.delete(h))));
      asking = false;
      await asker;
    };
    await run("warm", 1);
    await new Promise((r) => setTimeout(r, 2000));
    const idleStart = { temporal: processCpuS(dev.pid), worker: processCpuS(worker.pid!) };
    await new Promise((r) => setTimeout(r, 10_000));
    const idle = { temporal: processCpuS(dev.pid) - idleStart.temporal, worker: processCpuS(worker.pid!) - idleStart.worker };

    const before = {
      temporal: processCpuS(dev.pid),
      worker: processCpuS(worker.pid!),
      workerThreads: threadCpuS(worker.pid!),
      self: process.cpuUsage(),
    };
    const load = loadavg()[0];
    const started = Date.now();
    const fromUs = process.hrtime.bigint() / 1000n;
    await run("bench", n);
    const wallS = (Date.now() - started) / 1000;
    if (profileDir) console.log(`  profile window: --from ${fromUs} --to ${process.hrtime.bigint() / 1000n}`);
    const after = {
      temporal: processCpuS(dev.pid),
      worker: processCpuS(worker.pid!),
      workerThreads: threadCpuS(worker.pid!),
      self: process.cpuUsage(before.self),
    };
    const per = (v: number) => (v / n).toFixed(3);
    const temporal = after.temporal - before.temporal;
    const workerCpu = after.worker - before.worker;
    const self = (after.self.user + after.self.system) / 1e6;
    const threads = Object.entries(after.workerThreads)
      .map(([name, s]) => [name, s - (before.workerThreads[name] ?? 0)] as const)
      .filter(([, s]) => s >= 0.05)
      .map(([name, s]) => `${name} ${s.toFixed(2)}`)
      .join(", ");
    console.log(
      `N=${n} step~${stepMs} ms dev-args=[${devArgs.join(" ")}] wall ${wallS.toFixed(1)} s, load ${load?.toFixed(2)}\n` +
        `  CPU-s per workflow: Temporal ${per(temporal)}, worker ${per(workerCpu)}, client ${per(self)}, total ${per(temporal + workerCpu + self)}\n` +
        `  idle over 10 s: Temporal ${idle.temporal.toFixed(2)} CPU-s, worker ${idle.worker.toFixed(2)} CPU-s\n` +
        `  worker threads (CPU-s): ${threads}`,
    );
    const history = await client.workflow.getHandle("bench-0").fetchHistory();
    console.log(`  history events per workflow: ${history.events?.length}`);

    const queriesPerSecond = Number(option("--queries") ?? 0);
    if (queriesPerSecond > 0) {
      const b = { temporal: processCpuS(dev.pid), worker: processCpuS(worker.pid!), self: process.cpuUsage() };
      await run("queried", n, queriesPerSecond);
      const d = {
        temporal: processCpuS(dev.pid) - b.temporal,
        worker: processCpuS(worker.pid!) - b.worker,
        self: (() => {
          const u = process.cpuUsage(b.self);
          return (u.user + u.system) / 1e6;
        })(),
      };
      const extra = (now: number, then: number) => (((now - then) * 1000) / Math.max(1, queries)).toFixed(2);
      console.log(
        `  with ${queriesPerSecond} progress queries a second (${queries} queries): CPU-s per workflow Temporal ${per(d.temporal)}, ` +
          `worker ${per(d.worker)}, client ${per(d.self)}; per query (against the phase without) Temporal ${extra(d.temporal, temporal)} ms, ` +
          `worker ${extra(d.worker, workerCpu)} ms, client ${extra(d.self, self)} ms`,
      );
    }
  } finally {
    worker.kill("SIGTERM");
    await new Promise((r) => worker.once("exit", r));
    await connection.close();
    await dev.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
