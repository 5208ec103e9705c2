import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { Client, Connection } from "@temporalio/client";
import type { Worker } from "@temporalio/worker";
import type { ProviderEndpoints } from "../activities/providers/registry.js";
import { defaultSshShares, SshShares } from "../activities/ssh/owner-shares.js";
import { edgeLimitsFromConfig } from "../api/edge-limits.js";
import { buildApiServer } from "../api/http-server.js";
import { startProvisionerQueue } from "../compat/provisioner-queue.js";
import { ensureConsole } from "../console/build.js";
import { createKafkaHeartbeatVerifier } from "../core/agents/agent-tokens.js";
import { metricTierSettings } from "../core/agents/metric-tiers.js";
import { startAlerting } from "../core/alerts/alerting.js";
import { ensureAdminToken } from "../core/inventory/owners.js";
import { syncEnvProviderAccount } from "../core/inventory/provider-accounts.js";
import type { Config } from "../core/kernel/config.js";
import { errorSummary, log } from "../core/kernel/log.js";
import { createCredentialsCipher, resolveCredentialsKey } from "../core/security/credentials-cipher.js";
import { KeyParsingPool } from "../core/security/key-parsing.js";
import { nameResolverFromConfig } from "../core/security/name-resolution.js";
import { createNetworkPolicy } from "../core/security/network-policy.js";
import { openDatabase } from "../db/client.js";
import { startHeartbeatConsumer } from "../events/heartbeat-consumer.js";
import { startOutboxRelay } from "../events/relay.js";
import { readMetricsFrom } from "../observability/metrics.js";
import { serveMetrics } from "../observability/metrics-server.js";
import { createReadiness } from "../observability/readiness.js";
import { clientInterceptors } from "../temporal/client.js";
import { startDevServer } from "../temporal/dev-server.js";
import { ensureSearchAttributes } from "../temporal/ensure-search-attributes.js";
import { ensureHeartbeatMonitor } from "../temporal/heartbeat-monitor.js";
import { ensureFleetCheckSchedule, ensureMetricRollupSchedule, ensureReconcilerSchedule } from "../temporal/schedules.js";
import { createWorker } from "../temporal/worker.js";

export type Role = "all" | "api" | "worker";

export interface RunningService {
  apiPort?: number;
  temporalAddress: string;
  stop(): Promise<void>;
}

/**
 * Starts the service: storage (migrated), Temporal (the dev server when no
 * TEMPORAL_ADDRESS is set), the worker and the API, each as the role asks.
 */
export async function startService(config: Config, role: Role = "all"): Promise<RunningService> {
  const stops: (() => Promise<void>)[] = [];
  // Run first and at once, so the API and the worker drain side by side within one grace period.
  const drains: (() => void)[] = [];
  const stop = async () => {
    for (const d of drains) d();
    for (const s of stops.reverse()) await s().catch((error) => log.warn("shutdown step failed", errorSummary(error)));
  };
  try {
    mkdirSync(config.AXION_DATA_DIR, { recursive: true });
    const key = resolveCredentialsKey(config.CREDENTIALS_KEY, config.AXION_DATA_DIR);
    if (key.generatedFile) {
      log.warn("CREDENTIALS_KEY is not set: using a generated key kept in the data folder; set CREDENTIALS_KEY in production", {
        file: key.generatedFile,
      });
    }
    const cipher = createCredentialsCipher(key.spec);
    const keyParsing = new KeyParsingPool({
      threads: config.SSH_KEY_PARSE_THREADS,
      deadlineMs: config.SSH_KEY_PARSE_TIMEOUT_MS,
      maxPerOwner: config.SSH_KEY_PARSE_PER_OWNER,
    });
    stops.push(() => keyParsing.close());
    keyParsing.warm();
    const networkPolicy = createNetworkPolicy({
      allow: config.SERVER_ADDRESS_ALLOW,
      deny: config.SERVER_ADDRESS_DENY,
      resolver: nameResolverFromConfig(config),
    });
    const metricsAccess = { token: config.METRICS_TOKEN, public: config.METRICS_PUBLIC };

    const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.AXION_DATA_DIR });
    stops.push(() => database.close());
    await database.migrate();
    readMetricsFrom(database.db);
    log.info("database ready", { kind: database.kind });
    if (config.AXION_ADMIN_TOKEN) await ensureAdminToken(database.db, config.AXION_ADMIN_TOKEN);
    if (config.TIME4VPS_USERNAME && config.TIME4VPS_PASSWORD) {
      await syncEnvProviderAccount({ db: database.db, cipher }, { username: config.TIME4VPS_USERNAME, password: config.TIME4VPS_PASSWORD });
    }
    // Credentials come from each server's provider account; only where the APIs are is service-wide.
    const providers: ProviderEndpoints = { time4vps: { baseUrl: config.TIME4VPS_API_URL, timeoutMs: 30_000 } };

    let temporalAddress = config.TEMPORAL_ADDRESS;
    if (!temporalAddress) {
      const dev = await startDevServer(config.AXION_DATA_DIR);
      stops.push(() => dev.stop());
      temporalAddress = dev.address;
    }
    const clientConnection = await Connection.connect({ address: temporalAddress });
    stops.push(() => clientConnection.close());
    if (config.TEMPORAL_ADDRESS) await ensureSearchAttributes(clientConnection, config.TEMPORAL_NAMESPACE);
    const readiness = createReadiness({ db: database.db, temporal: clientConnection });
    drains.push(() => readiness.drain());
    const workflows = {
      client: new Client({ connection: clientConnection, namespace: config.TEMPORAL_NAMESPACE, interceptors: clientInterceptors() }),
      taskQueue: config.TEMPORAL_TASK_QUEUE,
    };

    if (role !== "api") {
      // Opened before the worker so it closes after it: /readyz answers "draining" while activities finish.
      if (config.WORKER_METRICS_PORT) {
        const metrics = await serveMetrics(config.WORKER_METRICS_PORT, metricsAccess, readiness);
        stops.push(() => metrics.close());
      }
      const { worker, connection, run } = await createWorker(
        {
          address: temporalAddress,
          namespace: config.TEMPORAL_NAMESPACE,
          taskQueue: config.TEMPORAL_TASK_QUEUE,
          shutdownGraceSeconds: config.SHUTDOWN_GRACE_SECONDS,
        },
        {
          db: database.db,
          cipher,
          orchestratorPublicKey: config.ORCHESTRATOR_SSH_PUBLIC_KEY,
          adminUser: config.AXION_ADMIN_USER,
          sshConnectTimeoutMs: config.SSH_CONNECT_TIMEOUT_MS,
          sshShares: new SshShares({
            ...defaultSshShares,
            perOwner: config.WORKER_SSH_SESSIONS_PER_OWNER,
            waitingPerOwner: config.WORKER_SSH_SESSIONS_PER_OWNER,
          }),
          keyParsing,
          networkPolicy,
          providers,
          outboxRelayed: Boolean(config.KAFKA_BROKERS),
          agent: config.AGENT_API_URL
            ? {
                binaryDir: resolve(config.AGENT_BINARY_DIR),
                apiUrl: config.AGENT_API_URL,
                heartbeatIntervalSeconds: config.AGENT_HEARTBEAT_INTERVAL,
              }
            : undefined,
        },
      );
      const running = run();
      // Polling stops at once; running activities have SHUTDOWN_GRACE_SECONDS to finish.
      const shutdown = () => {
        if (worker.getState() === "RUNNING") worker.shutdown();
      };
      drains.push(shutdown);
      stops.push(async () => {
        shutdown();
        await running;
        await connection.close();
      });
      log.info("worker polling", { taskQueue: config.TEMPORAL_TASK_QUEUE, namespace: config.TEMPORAL_NAMESPACE });
      await waitForRunning(worker);
      await ensureFleetCheckSchedule(workflows.client, { cron: config.FLEET_CHECK_CRON, taskQueue: config.TEMPORAL_TASK_QUEUE });
      await ensureReconcilerSchedule(workflows.client, {
        intervalSeconds: config.RECONCILE_INTERVAL_SECONDS,
        taskQueue: config.TEMPORAL_TASK_QUEUE,
      });
      await ensureMetricRollupSchedule(workflows.client, {
        intervalSeconds: config.METRICS_ROLLUP_INTERVAL_SECONDS,
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        settings: metricTierSettings(config),
      });
      await ensureHeartbeatMonitor(workflows.client, config.TEMPORAL_TASK_QUEUE, {
        timeoutSeconds: config.AGENT_HEARTBEAT_TIMEOUT,
        intervalSeconds: config.LIVENESS_SWEEP_INTERVAL,
        recoverOffline: config.RECOVER_OFFLINE_SERVERS === "true",
        maxOfflineRecoveries: config.OFFLINE_RECOVERY_CONCURRENCY,
        metricsRetentionHours: config.METRICS_RETENTION_HOURS,
        outboxRetentionHours: config.OUTBOX_RETENTION_HOURS,
        auditRetentionDays: config.AUDIT_RETENTION_DAYS,
        ingestionProgressRetentionHours: config.INGESTION_PROGRESS_RETENTION_HOURS,
        instanceDeadAfterSeconds: config.AGENT_INSTANCE_DEAD_AFTER,
      });
    }

    if (config.KAFKA_BROKERS && role !== "api") {
      // Every worker may run one: relays claim servers with advisory locks, so per-server order holds.
      const relay = startOutboxRelay({ db: database.db, brokers: config.KAFKA_BROKERS, clientId: `axion-worker-${process.pid}` });
      stops.push(() => relay.stop());
      log.info("relaying the outbox to Kafka", { brokers: config.KAFKA_BROKERS.join(",") });
    }

    const alertDefaults = {
      diskPercent: config.ALERT_DISK_PERCENT,
      memoryPercent: config.ALERT_MEMORY_PERCENT,
      sustainedSeconds: config.ALERT_SUSTAINED_SECONDS,
      flapping: {
        changes: config.ALERT_FLAP_CHANGES,
        windowSeconds: config.ALERT_FLAP_WINDOW_SECONDS,
        settleSeconds: config.ALERT_FLAP_SETTLE_SECONDS ?? config.ALERT_FLAP_WINDOW_SECONDS,
      },
    };
    if (role !== "api") {
      // Every worker may run one: evaluation takes a try-lock, deliveries are claimed with leases.
      const alerting = startAlerting({
        db: database.db,
        cipher,
        networkPolicy,
        graceSeconds: config.ALERT_GRACE_SECONDS,
        defaults: alertDefaults,
        resourceIntervalSeconds: config.ALERT_EVALUATION_INTERVAL_SECONDS,
        timeoutMs: config.NOTIFICATION_TIMEOUT_MS,
        retryInitialMs: config.NOTIFICATION_RETRY_INITIAL_MS,
        retryMaxMs: config.NOTIFICATION_RETRY_MAX_MS,
        maxAttempts: config.NOTIFICATION_MAX_ATTEMPTS,
        deliveriesPerOwner: config.NOTIFICATION_DELIVERIES_PER_OWNER,
        deliveriesInFlight: config.NOTIFICATION_DELIVERIES_IN_FLIGHT,
        retentionHours: config.OUTBOX_RETENTION_HOURS,
      });
      stops.push(() => alerting.stop());
    }

    if (config.REDIS_URL && role !== "api") {
      const queue = startProvisionerQueue({
        redisUrl: config.REDIS_URL,
        db: database.db,
        workflows,
        ownerName: config.REDIS_QUEUE_OWNER as string,
        dedupeSeconds: config.REDIS_QUEUE_DEDUPE_HOURS * 3600,
      });
      stops.push(() => queue.stop());
    }

    let apiPort: number | undefined;
    if (role !== "worker") {
      const consoleDir = await ensureConsole().catch((error: unknown) => {
        log.warn("the console could not be built: the API answers without it (npm run console:build shows why)", errorSummary(error));
        return undefined;
      });
      const api = buildApiServer(
        {
          db: database.db,
          listen: database.listen,
          cipher,
          maxServersPerOwner: config.MAX_SERVERS_PER_USER,
          workflows,
          heartbeatIntervalSeconds: config.AGENT_HEARTBEAT_INTERVAL,
          providers,
          keyParsing,
          networkPolicy,
          agentCallsPerInterval: config.AGENT_RATE_LIMIT,
          metricTiers: metricTierSettings(config),
          sshConnectTimeoutMs: config.SSH_CONNECT_TIMEOUT_MS,
          consoleDir,
          notifications: {
            maxChannelsPerOwner: config.NOTIFICATION_CHANNELS_PER_OWNER,
            timeoutMs: config.NOTIFICATION_TIMEOUT_MS,
            defaults: alertDefaults,
          },
        },
        edgeLimitsFromConfig(config),
        metricsAccess,
        readiness,
      );
      apiPort = await api.listen(config.PORT);
      stops.push(() => api.close(config.SHUTDOWN_GRACE_SECONDS * 1000));
      if (config.KAFKA_BROKERS) {
        const consumer = await startHeartbeatConsumer({
          brokers: config.KAFKA_BROKERS,
          db: database.db,
          ingestor: api.ingestor,
          verify: createKafkaHeartbeatVerifier(database.db, cipher),
        });
        stops.push(() => consumer.stop());
      }
      log.info("API listening", { port: apiPort });
    }
    return { apiPort, temporalAddress, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function waitForRunning(worker: Worker): Promise<void> {
  while (worker.getState() === "INITIALIZED") await new Promise((r) => setTimeout(r, 20));
  if (worker.getState() !== "RUNNING") throw new Error(`worker did not start: ${worker.getState()}`);
}
