import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, Connection } from "@temporalio/client";
import type { Worker } from "@temporalio/worker";
import { DefaultLogger, Runtime } from "@temporalio/worker";
import type { ProviderEndpoints } from "../../activities/providers/registry.js";
import type { EdgeLimits } from "../../api/edge-limits.js";
import { createCredentialsCipher } from "../../core/security/credentials-cipher.js";
import type { NetworkPolicy } from "../../core/security/network-policy.js";
import { openDatabase } from "../../db/client.js";
import { clientInterceptors } from "../../temporal/client.js";
import { type RunningDevServer, startDevServer } from "../../temporal/dev-server.js";
import { createWorker } from "../../temporal/worker.js";
import { startTestApi, type TestApi, testCredentialsKey } from "./api.js";
import { freePort } from "./ports.js";

export interface ProvisioningHarness {
  api: TestApi;
  client: Client;
  dev: RunningDevServer;
  taskQueue: string;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

let runtimeInstalled = false;

/** A real Temporal dev server, a worker with the real activities, and the API wired to both, on one database. */
export async function startProvisioningHarness(
  options: {
    orchestratorPublicKey?: string;
    sshConnectTimeoutMs?: number;
    /** Where provider APIs are (a stand-in); accounts hold the credentials. */
    providers?: ProviderEndpoints;
    /** PostgreSQL instead of in-memory PGlite, so a worker in another process can share the database. */
    databaseUrl?: string;
    /** Start no worker in this process (the test runs its own). */
    noWorker?: boolean;
    /** MAX_SERVERS_PER_USER of the API (default 1000). */
    maxServersPerOwner?: number;
    /** Install the real agent: its binaries, and the address at which test hosts reach this machine. */
    agent?: { binaryDir: string; gateway: string; heartbeatIntervalSeconds: number };
    /** Which server addresses the API and the worker accept (default: the built-in policy, no loopback). */
    networkPolicy?: NetworkPolicy;
    /** The API's per-owner limits where not the defaults of core/kernel/config.ts. */
    limits?: Partial<EdgeLimits>;
  } = {},
): Promise<ProvisioningHarness> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger("WARN") });
    runtimeInstalled = true;
  }
  const dataDir = mkdtempSync(join(tmpdir(), "axion-prov-"));
  const dev = await startDevServer(dataDir, { port: await freePort(), uiPort: await freePort(), headless: true });
  const database = await openDatabase({ databaseUrl: options.databaseUrl, dataDir: "memory://" });
  await database.migrate();
  const connection = await Connection.connect({ address: dev.address });
  const client = new Client({ connection, namespace: dev.spec.namespace, interceptors: clientInterceptors() });
  const taskQueue = "axion-provisioning-test";
  const api = await startTestApi({
    database,
    workflows: { client, taskQueue },
    providers: options.providers,
    maxServersPerOwner: options.maxServersPerOwner,
    listenHost: options.agent ? "0.0.0.0" : undefined,
    heartbeatIntervalSeconds: options.agent?.heartbeatIntervalSeconds,
    networkPolicy: options.networkPolicy,
    limits: options.limits,
  });
  const agent = options.agent && {
    binaryDir: options.agent.binaryDir,
    apiUrl: `http://${options.agent.gateway}:${api.port}`,
    heartbeatIntervalSeconds: options.agent.heartbeatIntervalSeconds,
  };
  let running: { worker: Worker; done: Promise<void>; close: () => Promise<void> } | undefined;

  const harness: ProvisioningHarness = {
    api,
    client,
    dev,
    taskQueue,
    async startWorker() {
      const {
        worker,
        connection: workerConnection,
        run,
      } = await createWorker(
        { address: dev.address, namespace: dev.spec.namespace, taskQueue },
        {
          db: database.db,
          cipher: createCredentialsCipher(testCredentialsKey),
          orchestratorPublicKey: options.orchestratorPublicKey,
          adminUser: "axion",
          sshConnectTimeoutMs: options.sshConnectTimeoutMs ?? 5000,
          providers: options.providers,
          agent,
          networkPolicy: options.networkPolicy,
        },
      );
      running = { worker, done: run(), close: () => workerConnection.close() };
    },
    async stopWorker() {
      if (!running) return;
      running.worker.shutdown();
      await running.done;
      await running.close();
      running = undefined;
    },
    async close() {
      await harness.stopWorker();
      await api.close();
      await connection.close();
      await dev.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  if (!options.noWorker) await harness.startWorker();
  return harness;
}
