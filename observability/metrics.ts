import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import client from "prom-client";
import { ingestionBehindSeconds, outboxBacklog, rolloutProgress, serverCountsByStatus } from "../core/agents/metrics-readings.js";
import { bearerToken } from "../core/kernel/bearer-token.js";
import { AppError } from "../core/kernel/errors.js";
import { serverStatuses } from "../core/kernel/kinds.js";
import { errorSummary, log } from "../core/kernel/log.js";
import type { Database } from "../db/client.js";
import { AgentService } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { NotificationService } from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import { OperationService } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ProviderAccountService } from "../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import { RequirementsService } from "../gen/axion/infrastructure/v1/requirements_service_pb.js";
import { RolloutService } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { TokenService } from "../gen/axion/infrastructure/v1/token_service_pb.js";

/**
 * Every metric the service exports, in one registry per process (`npm start`
 * runs API and worker in one process: one registry). Workflows never record
 * here (they must stay deterministic): operation and step durations come from
 * the operation row when it is finished, from its timestamps and its progress
 * summary. Readings of the database (servers by status, outbox backlog,
 * ingestion lag) are taken at scrape time and are the same from every process.
 */
export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });
// prom-client names these three gauges like counters (promtool warns); each is the sum of its
// per-type gauge kept beside it: `sum(nodejs_active_handles)` and so on.
for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) {
  registry.removeSingleMetric(name);
}

const durationBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const requestBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

// --- readings of the database, taken at scrape time ---

let database: Database | undefined;

/** Where scrape-time readings come from; set once per process by the service (the latest call wins). */
export function readMetricsFrom(db: Database): void {
  database = db;
}

async function reading<T>(what: string, read: (db: Database) => Promise<T>): Promise<T | undefined> {
  if (!database) return undefined;
  try {
    return await read(database);
  } catch (error) {
    log.warn("metrics reading failed", { what, ...errorSummary(error) });
    return undefined;
  }
}

/**
 * One reading shared by the gauges it feeds: a scrape starts every gauge's
 * collect in the same turn, so the first starts the statement and the others
 * await the same answer while it is in flight; the next scrape reads anew.
 */
function shared<T>(what: string, read: (db: Database) => Promise<T>): () => Promise<T | undefined> {
  let inFlight: Promise<T | undefined> | undefined;
  return () => {
    inFlight ??= reading(what, read).finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}

new client.Gauge({
  name: "axion_servers",
  help: "Servers by status (all owners).",
  labelNames: ["status"],
  registers: [registry],
  async collect() {
    const counts = await reading("servers", serverCountsByStatus);
    this.reset();
    if (!counts) return;
    for (const status of serverStatuses) this.set({ status }, 0);
    for (const { status, count } of counts) this.set({ status }, count);
  },
});

const outbox = shared("outbox", outboxBacklog);
new client.Gauge({
  name: "axion_outbox_backlog_events",
  help: "Outbox events not yet published to Kafka.",
  registers: [registry],
  async collect() {
    const backlog = await outbox();
    this.reset();
    if (backlog) this.set(backlog.events);
  },
});
new client.Gauge({
  name: "axion_outbox_oldest_unpublished_age_seconds",
  help: "Age of the oldest unpublished outbox event: how far the relay lags (0 when the outbox is empty).",
  registers: [registry],
  async collect() {
    const backlog = await outbox();
    this.reset();
    if (backlog) this.set(backlog.oldestAgeSeconds);
  },
});

new client.Gauge({
  name: "axion_heartbeat_ingestion_behind_seconds",
  help: "How long ago the earliest reporting ingestion instance was last known complete (what the liveness sweep trusts).",
  registers: [registry],
  async collect() {
    const behind = await reading("ingestion progress", ingestionBehindSeconds);
    this.reset();
    if (behind !== undefined) this.set(behind);
  },
});

// --- rollouts ---

const rollouts = shared("rollouts", rolloutProgress);
new client.Gauge({
  name: "axion_rollouts",
  help: "Rollouts by status.",
  labelNames: ["status"],
  registers: [registry],
  async collect() {
    const progress = await rollouts();
    this.reset();
    for (const { status, count } of progress?.rollouts ?? []) this.set({ status }, count);
  },
});
new client.Gauge({
  name: "axion_rollout_servers",
  help: "Servers of running rollouts by their state in the rollout.",
  labelNames: ["state"],
  registers: [registry],
  async collect() {
    const progress = await rollouts();
    this.reset();
    for (const { state, count } of progress?.servers ?? []) this.set({ state }, count);
  },
});

// --- operations ---

const operationsStarted = new client.Counter({
  name: "axion_operations_started_total",
  help: "Operations started, by kind and starter (owner, fleet_check, offline_recovery, compat_queue).",
  labelNames: ["kind", "started_by"],
  registers: [registry],
});
const operationsFinished = new client.Counter({
  name: "axion_operations_finished_total",
  help: "Operations ended, by kind and outcome (succeeded, failed, cancelled).",
  labelNames: ["kind", "outcome"],
  registers: [registry],
});
const operationDuration = new client.Histogram({
  name: "axion_operation_duration_seconds",
  help: "From an operation's start to its end, by kind and outcome.",
  labelNames: ["kind", "outcome"],
  buckets: durationBuckets,
  registers: [registry],
});
const stepDuration = new client.Histogram({
  name: "axion_operation_step_duration_seconds",
  help: "Duration of each step of an ended operation, by kind, step and step status (done, unchanged, skipped, failed).",
  labelNames: ["kind", "step", "status"],
  buckets: durationBuckets,
  registers: [registry],
});

/** Returns its row: `return operationStarted(await db.transaction(...), starter)`. */
export function operationStarted<T extends { kind: string }>(row: T, startedBy: string): T {
  operationsStarted.inc({ kind: row.kind, started_by: startedBy });
  return row;
}

/** Called once per operation, when its row is ended (by its workflow or by the reconciler). */
export function operationFinished(row: { kind: string; status: string; startedAt: Date; finishedAt: Date | null; result?: unknown }): void {
  const outcome = row.status.toLowerCase();
  operationsFinished.inc({ kind: row.kind, outcome });
  if (row.finishedAt) operationDuration.observe({ kind: row.kind, outcome }, (row.finishedAt.getTime() - row.startedAt.getTime()) / 1000);
  const steps = (row.result as { steps?: unknown } | null | undefined)?.steps;
  if (!Array.isArray(steps)) return;
  for (const step of steps as { name?: unknown; status?: unknown; durationMs?: unknown }[]) {
    if (typeof step?.name !== "string" || typeof step.durationMs !== "number") continue;
    stepDuration.observe({ kind: row.kind, step: step.name, status: String(step.status ?? "unknown") }, step.durationMs / 1000);
  }
}

// --- SSH ---

const sshFailures = new client.Counter({
  name: "axion_ssh_failures_total",
  help: "SSH failures by class (SshAuthFailed, SshUnreachable, SshTimeout, HostKeyMismatch, RemoteCommandFailed, ...), every attempt counted.",
  labelNames: ["class"],
  registers: [registry],
});

export function sshFailed(type: string): void {
  sshFailures.inc({ class: type });
}

// --- heartbeats ---

const heartbeatsAccepted = new client.Counter({
  name: "axion_heartbeats_accepted_total",
  help: "Agent heartbeats stored, by source (api: Connect route and fast path; kafka).",
  labelNames: ["source"],
  registers: [registry],
});
const heartbeatsRefused = new client.Counter({
  name: "axion_heartbeats_refused_total",
  help: "Agent heartbeats refused, by source and reason (unauthenticated, rate_limited, invalid_argument, not_stored, dropped).",
  labelNames: ["source", "reason"],
  registers: [registry],
});
const batchSize = new client.Histogram({
  name: "axion_heartbeat_ingest_batch_heartbeats",
  help: "Heartbeats per batch written by the ingestor.",
  buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
  registers: [registry],
});
const ingestLag = new client.Histogram({
  name: "axion_heartbeat_ingest_lag_seconds",
  help: "From the receipt of a batch's oldest heartbeat to the batch being stored.",
  buckets: requestBuckets,
  registers: [registry],
});

/** Why a heartbeat was refused, from the error its intake threw. */
function refusalReason(error: unknown): string {
  if (error instanceof ConnectError) {
    if (error.code === Code.Unauthenticated) return "unauthenticated";
    if (error.code === Code.ResourceExhausted) return "too_large";
    if (error.code === Code.InvalidArgument) return "invalid_argument";
  }
  if (error instanceof AppError) {
    if (error.kind === "resource_exhausted") return "rate_limited";
    if (error.kind === "invalid_argument") return error.message.startsWith("metrics: cannot be stored") ? "not_stored" : "invalid_argument";
  }
  return "error";
}

/** Counts one heartbeat through the API's intake: accepted once stored, or refused with its reason. */
export async function countHeartbeat(intake: Promise<void>): Promise<void> {
  try {
    await intake;
    heartbeatsAccepted.inc({ source: "api" });
  } catch (error) {
    heartbeatsRefused.inc({ source: "api", reason: refusalReason(error) });
    throw error;
  }
}

/** The Kafka topic's intake: stored, or dropped (malformed, bad signature, replayed, stale or invalid). */
export function kafkaHeartbeat(accepted: boolean): void {
  if (accepted) heartbeatsAccepted.inc({ source: "kafka" });
  else heartbeatsRefused.inc({ source: "kafka", reason: "dropped" });
}

export function heartbeatBatchWritten(size: number, oldestReceivedAt: Date | undefined): void {
  // The ingestor also writes empty batches: they only record progress.
  if (size === 0) return;
  batchSize.observe(size);
  if (oldestReceivedAt) ingestLag.observe(Math.max(0, (Date.now() - oldestReceivedAt.getTime()) / 1000));
}

// --- liveness ---

const sweepDuration = new client.Histogram({
  name: "axion_liveness_sweep_duration_seconds",
  help: "Duration of one liveness sweep (one statement).",
  buckets: requestBuckets,
  registers: [registry],
});
const livenessTransitions = new client.Counter({
  name: "axion_liveness_transitions_total",
  help: "Servers moved by the liveness sweep, by the status they went to (OFFLINE, ONLINE).",
  labelNames: ["to"],
  registers: [registry],
});

/** Times a sweep and counts what it moved: `sweepLiveness: (input) => timedSweep(sweepLiveness(...))`. */
export async function timedSweep<T extends { offline: number; online: number }>(sweep: () => Promise<T>): Promise<T> {
  const end = sweepDuration.startTimer();
  const result = await sweep();
  end();
  livenessTransitions.inc({ to: "OFFLINE" }, result.offline);
  livenessTransitions.inc({ to: "ONLINE" }, result.online);
  return result;
}

// --- outbox relay ---

const outboxPublished = new client.Counter({
  name: "axion_outbox_published_events_total",
  help: "Outbox events published to Kafka by this process' relay.",
  registers: [registry],
});

export function outboxEventsPublished(count: number): void {
  outboxPublished.inc(count);
}

// --- API ---

const apiRequests = new client.Counter({
  name: "axion_api_requests_total",
  help: "API requests by method (Service/Method) and Connect code; refusals before routing (no owner token) included.",
  labelNames: ["method", "code"],
  registers: [registry],
});
const apiDuration = new client.Histogram({
  name: "axion_api_request_duration_seconds",
  help: "API request latency by method and code (streams: until the stream is set up).",
  labelNames: ["method", "code"],
  buckets: requestBuckets,
  registers: [registry],
});

const services = [
  AgentService,
  ClusterService,
  NotificationService,
  OperationService,
  ProviderAccountService,
  RequirementsService,
  RolloutService,
  ServerService,
  TokenService,
];
/** Request paths are client input: only our own procedures become label values. */
const procedures = new Map<string, string>(
  services.flatMap((s) => s.methods.map((m) => [`/${s.typeName}/${m.name}`, `${s.name}/${m.name}`])),
);

function apiRequest(method: string, code: Code | undefined, startedAt?: bigint): void {
  const labels = { method, code: code === undefined ? "ok" : codeToString(code) };
  apiRequests.inc(labels);
  if (startedAt !== undefined) apiDuration.observe(labels, Number(process.hrtime.bigint() - startedAt) / 1e9);
}

export const codeOf = (error: unknown): Code => (error instanceof ConnectError ? error.code : Code.Internal);

/** The outermost Connect interceptor: sees every answer after errors were mapped to codes. */
export const metricsInterceptor: Interceptor = (next) => async (req) => {
  const startedAt = process.hrtime.bigint();
  const method = `${req.service.name}/${req.method.name}`;
  try {
    const res = await next(req);
    apiRequest(method, undefined, startedAt);
    return res;
  } catch (error) {
    apiRequest(method, codeOf(error), startedAt);
    throw error;
  }
};

/** An answer written outside Connect's router (auth before the body: counted only; the heartbeat fast path: timed too). */
export function rawApiAnswer(path: string | undefined, code: Code | undefined, startedAt?: bigint): void {
  apiRequest(procedures.get(path?.split("?", 1)[0] ?? "") ?? "unknown", code, startedAt);
}

// --- the endpoint ---

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

function bearerMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(bearerToken(header) ?? "");
  const wanted = Buffer.from(token);
  // Compare equal-length buffers so the time does not tell how much matched; the length check is separate.
  return timingSafeEqual(given.length === wanted.length ? given : wanted, wanted) && given.length === wanted.length;
}

/**
 * Who may scrape `/metrics` (METRICS_TOKEN, METRICS_PUBLIC). With a token: only
 * `Authorization: Bearer <token>`, from anywhere. Without one: only a scraper on
 * this machine, a loopback peer whose request no proxy forwarded (a reverse
 * proxy on the machine would otherwise pass the world's requests as loopback).
 * `public`: anyone, as before this rule (an explicit opt-in).
 */
export interface MetricsAccess {
  token?: string;
  public?: boolean;
}

const FORWARDING_HEADERS = ["forwarded", "x-forwarded-for", "x-real-ip"];

function isLocalScraper(req: Request): boolean {
  const peer = (req.socket?.remoteAddress ?? "").replace(/^::ffff:/i, "");
  const loopback = peer === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(peer);
  return loopback && FORWARDING_HEADERS.every((name) => req.headers[name] === undefined);
}

/** `GET /metrics` (and `HEAD`: the same answer without its body) in the Prometheus text format, for whom `access` admits. */
export function metricsHandler(access: MetricsAccess = {}) {
  return (req: Request, res: Response): void => {
    if (access.token && !bearerMatches(req.headers.authorization, access.token)) {
      res.writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" });
      res.end("missing or wrong bearer token\n");
      return;
    }
    if (!access.token && !access.public && !isLocalScraper(req)) {
      res.writeHead(403, { "content-type": "text/plain" });
      res.end("metrics are served to this machine only: set METRICS_TOKEN to scrape from another host\n");
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { "content-type": registry.contentType });
        res.end(text);
      },
      (error: unknown) => {
        log.warn("metrics not collected", errorSummary(error));
        res.writeHead(500, { "content-type": "text/plain" });
        res.end("metrics not collected\n");
      },
    );
  };
}

/** The Temporal SDK's own metrics (workers, polls, activities) exported to Prometheus at `address` (host:port). */
export function temporalMetricsTelemetry(address: string | undefined) {
  return address
    ? { metrics: { prometheus: { bindAddress: address, countersTotalSuffix: true, useSecondsForDurations: true } } }
    : undefined;
}
