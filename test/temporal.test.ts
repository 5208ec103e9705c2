import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Client, Connection } from "@temporalio/client";
import proto from "@temporalio/proto";
import { parse } from "yaml";
import { loadConfig } from "../core/kernel/config.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { openDatabase } from "../db/client.js";
import { devServerFile, devServerSpec, type RunningDevServer, startDevServer } from "../temporal/dev-server.js";
import { ensureSearchAttributes } from "../temporal/ensure-search-attributes.js";
import { ensureHeartbeatMonitor, HEARTBEAT_MONITOR_ID } from "../temporal/heartbeat-monitor.js";
import { customSearchAttributes, workflowRoleAttribute } from "../temporal/search-attributes.js";
import { createWorker } from "../temporal/worker.js";
import { systemWorkflows } from "../workflows/contract.js";
import { monitorSettingsQuery } from "../workflows/definitions.js";
import { testCredentialsKey } from "./support/api.js";
import { freePort } from "./support/ports.js";

const { TaskQueueType } = proto.temporal.api.enums.v1;

describe("temporal-dev.yml and the launcher describe the same dev server", () => {
  const compose = parse(readFileSync(devServerFile, "utf8"));
  const service = compose.services.temporal;
  const spec = devServerSpec("/srv/axion-data");

  test("the namespace is the service's default TEMPORAL_NAMESPACE", () => {
    assert.equal(spec.namespace, loadConfig({}).TEMPORAL_NAMESPACE);
  });

  test("the search attributes are exactly the ones the code defines", () => {
    const expected = Object.fromEntries(customSearchAttributes.map((a) => [a.name, "Keyword"]));
    assert.deepEqual(spec.searchAttributes, expected);
    assert.ok(customSearchAttributes.every((a) => a.type === "KEYWORD"));
  });

  test("the published ports are the ones the launcher uses", () => {
    assert.ok(service.ports.includes(`${spec.port}:${spec.port}`), "gRPC frontend");
    assert.ok(service.ports.includes(`${spec.uiPort}:${spec.uiPort}`), "Web UI");
  });

  test("the container's /data volume maps to <data folder>/temporal on loopback", () => {
    assert.equal(spec.dbFile, "/srv/axion-data/temporal/temporal.sqlite");
    assert.ok(spec.args.includes("--ip=127.0.0.1"));
    assert.ok(service.command.includes("--ip=0.0.0.0"), "the container listens on all interfaces");
    assert.deepEqual(spec.args.slice(0, 2), ["server", "start-dev"]);
  });
});

describe("a worker on a real Temporal dev server", () => {
  let dataDir: string;
  let dev: RunningDevServer;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "axion-temporal-"));
    dev = await startDevServer(dataDir, { port: await freePort(), uiPort: await freePort(), headless: true });
  });
  after(async () => {
    await dev?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test("the dev server keeps its state in the data folder and registers the search attributes", async () => {
    assert.equal(dev.spec.dbFile, join(dataDir, "temporal", "temporal.sqlite"));
    assert.ok(readFileSync(dev.spec.dbFile).length > 0, "SQLite file written");
    const connection = await Connection.connect({ address: dev.address });
    try {
      const listed = await connection.operatorService.listSearchAttributes({ namespace: dev.spec.namespace });
      for (const attribute of customSearchAttributes) assert.ok(attribute.name in (listed.customAttributes ?? {}), attribute.name);
      // On an external server the service registers them itself; doing it again changes nothing.
      await ensureSearchAttributes(connection, dev.spec.namespace);
      await ensureSearchAttributes(connection, "default");
      const onDefault = await connection.operatorService.listSearchAttributes({ namespace: "default" });
      for (const attribute of customSearchAttributes) assert.ok(attribute.name in (onDefault.customAttributes ?? {}), attribute.name);
    } finally {
      await connection.close();
    }
  });

  /** A worker on its own task queue for the duration of `body`. */
  async function withWorker(
    taskQueue: string,
    body: (connection: Connection) => Promise<void>,
    options: { workflowsPath?: string } = {},
  ): Promise<void> {
    const database = await openDatabase({ dataDir: "memory://" });
    await database.migrate();
    const {
      worker,
      connection: workerConnection,
      run,
    } = await createWorker(
      { address: dev.address, namespace: dev.spec.namespace, taskQueue, workflowsPath: options.workflowsPath },
      { db: database.db, cipher: createCredentialsCipher(testCredentialsKey), adminUser: "axion", sshConnectTimeoutMs: 5000 },
    );
    const running = run();
    const connection = await Connection.connect({ address: dev.address });
    try {
      await body(connection);
    } finally {
      worker.shutdown();
      await running;
      await workerConnection.close();
      await connection.close();
      await database.close();
    }
  }

  test("the worker connects and polls its task queue", async () => {
    const taskQueue = "axion-test-queue";
    await withWorker(taskQueue, async (connection) => {
      let pollers: unknown[] = [];
      for (let i = 0; i < 100 && pollers.length === 0; i++) {
        const described = await connection.workflowService.describeTaskQueue({
          namespace: dev.spec.namespace,
          taskQueue: { name: taskQueue },
          taskQueueType: TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        });
        pollers = described.pollers ?? [];
        if (pollers.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(pollers.length > 0, "the task queue has a poller");
    });
  });

  test("the heartbeat monitor is one workflow; a worker starting with new settings hands them to it", async () => {
    const taskQueue = "axion-monitor-queue";
    await withWorker(taskQueue, async (connection) => {
      const client = new Client({ connection, namespace: dev.spec.namespace });
      const settings = {
        timeoutSeconds: 40,
        intervalSeconds: 1,
        recoverOffline: false,
        maxOfflineRecoveries: 5,
        metricsRetentionHours: 24,
        outboxRetentionHours: 24,
        ingestionProgressRetentionHours: 24,
      };
      // Started as an earlier release did: without the housekeeping role.
      const handle = await client.workflow.start(systemWorkflows.heartbeatMonitor, {
        workflowId: HEARTBEAT_MONITOR_ID,
        taskQueue,
        args: [settings],
      });
      const firstRun = (await handle.describe()).runId;
      assert.deepEqual(await handle.query(monitorSettingsQuery), settings);

      await ensureHeartbeatMonitor(client, taskQueue, { ...settings, timeoutSeconds: 90 });
      const described = await handle.describe();
      assert.notEqual(described.runId, firstRun, "the monitor continued as new, on this worker's code");
      assert.equal(described.typedSearchAttributes.get(workflowRoleAttribute), "housekeeping", "its next run is housekeeping");
      assert.equal(described.status.name, "RUNNING");
      assert.equal((await handle.query(monitorSettingsQuery)).timeoutSeconds, 90);
      const open: string[] = [];
      for await (const run of client.workflow.list({ query: `WorkflowId = "${HEARTBEAT_MONITOR_ID}" and ExecutionStatus = "Running"` }))
        open.push(run.runId);
      assert.deepEqual(open, [described.runId], "still one single monitor");
      await handle.terminate("test over");
    });
  });

  test("a monitor stuck on a change this code cannot replay is replaced at worker start, and sweeps again", async () => {
    const taskQueue = "axion-upgrade-queue";
    const settings = {
      timeoutSeconds: 40,
      intervalSeconds: 1,
      recoverOffline: false,
      maxOfflineRecoveries: 5,
      metricsRetentionHours: 24,
      outboxRetentionHours: 24,
      ingestionProgressRetentionHours: 24,
    };
    let before = "";
    await withWorker(
      taskQueue,
      async (connection) => {
        const client = new Client({ connection, namespace: dev.spec.namespace });
        await ensureHeartbeatMonitor(client, taskQueue, settings);
        await new Promise((r) => setTimeout(r, 2500)); // a couple of sweeps on the earlier release
        before = (await client.workflow.getHandle(HEARTBEAT_MONITOR_ID).describe()).runId;
      },
      { workflowsPath: fileURLToPath(new URL("support/workflows-before-upgrade.ts", import.meta.url)) },
    );
    // The upgrade: a worker with today's code starts and hands the monitor its settings.
    await withWorker(taskQueue, async (connection) => {
      const client = new Client({ connection, namespace: dev.spec.namespace });
      await ensureHeartbeatMonitor(client, taskQueue, settings);
      const handle = client.workflow.getHandle(HEARTBEAT_MONITOR_ID);
      let sweptOnNewCode = false;
      const deadline = Date.now() + 15_000;
      while (!sweptOnNewCode && Date.now() < deadline) {
        const described = await handle.describe();
        if (described.runId !== before) {
          const events = (await client.workflow.getHandle(HEARTBEAT_MONITOR_ID, described.runId).fetchHistory()).events ?? [];
          sweptOnNewCode = events.some((e) => e.markerRecordedEventAttributes);
        }
        if (!sweptOnNewCode) await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(sweptOnNewCode, "the monitor sweeps on the new code within 15 s of the worker start");
      const described = await handle.describe();
      assert.equal(described.status.name, "RUNNING");
      assert.ok((described.raw.pendingWorkflowTask?.attempt ?? 1) <= 1, "no failing workflow task");
      assert.deepEqual(await handle.query(monitorSettingsQuery), settings);
      await handle.terminate("test over");
    });
  });
});

describe("the embedded dev server is the launcher's own", () => {
  /** Processes running a Temporal dev server on this SQLite file. */
  const devServersOn = (dbFile: string) =>
    readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").includes(`--db-filename=${dbFile}`);
        } catch {
          return false;
        }
      })
      .map(Number);

  test("a port held by another Temporal server is refused with one line, never adopted", async () => {
    const theirs = mkdtempSync(join(tmpdir(), "axion-theirs-"));
    const ours = mkdtempSync(join(tmpdir(), "axion-ours-"));
    const port = await freePort();
    const other = await startDevServer(theirs, { port, headless: true });
    try {
      await assert.rejects(startDevServer(ours, { port, headless: true }), (error: Error) => {
        assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port} is in use by another process`));
        assert.match(error.message, /TEMPORAL_ADDRESS/);
        return true;
      });
      assert.deepEqual(devServersOn(devServerSpec(ours).dbFile), [], "no dev server left running for the refused start");
      // The other instance's server is untouched.
      const connection = await Connection.connect({ address: other.address });
      await connection.workflowService.describeNamespace({ namespace: other.spec.namespace });
      await connection.close();
    } finally {
      await other.stop();
      rmSync(theirs, { recursive: true, force: true });
      rmSync(ours, { recursive: true, force: true });
    }
  });

  test("a data folder from an earlier release gets the search attributes added since (the CLI registers them only in a new database)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "axion-upgrade-"));
    const added = customSearchAttributes.slice(-2).map((a) => a.name);
    try {
      // The earlier release's database: the attributes added since are not in it.
      const earlier = await startDevServer(dataDir, { port: await freePort(), headless: true });
      const connection = await Connection.connect({ address: earlier.address });
      await connection.operatorService.removeSearchAttributes({ namespace: earlier.spec.namespace, searchAttributes: added });
      await connection.close();
      await earlier.stop();

      const next = await startDevServer(dataDir, { port: await freePort(), headless: true });
      try {
        const client = await Connection.connect({ address: next.address });
        const listed = await client.operatorService.listSearchAttributes({ namespace: next.spec.namespace });
        await client.close();
        for (const name of added) assert.ok(name in (listed.customAttributes ?? {}), `${name} registered again`);
      } finally {
        await next.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("after a kill -9 of the service, the next start ends the dev server it left behind and starts its own", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "axion-orphan-"));
    const port = await freePort();
    const service = spawn(process.execPath, ["--import", "tsx", "test/support/dev-server-process.ts", dataDir, String(port)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const orphan = await new Promise<number>((resolve, reject) => {
      let out = "";
      service.stdout.on("data", (d) => {
        out += d;
        const line = out.split("\n").find((l) => l.startsWith("{"));
        if (line) resolve((JSON.parse(line) as { pid: number }).pid);
      });
      service.once("exit", (code) => reject(new Error(`launcher process exited with ${code}`)));
    });
    service.kill("SIGKILL");
    await new Promise((r) => service.once("exit", r));
    const dbFile = devServerSpec(dataDir).dbFile;
    assert.deepEqual(devServersOn(dbFile), [orphan], "the dev server outlived its service");

    const next = await startDevServer(dataDir, { port, headless: true });
    try {
      assert.notEqual(next.pid, orphan);
      assert.deepEqual(devServersOn(dbFile), [next.pid], "only the new start's dev server runs on this data folder");
      const record = JSON.parse(readFileSync(join(dataDir, "temporal", "dev-server.json"), "utf8"));
      assert.equal(record.pid, next.pid);
      assert.equal(record.port, port);
    } finally {
      await next.stop();
      for (const pid of devServersOn(dbFile)) process.kill(pid, "SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
