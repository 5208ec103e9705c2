import { fromJsonString, toJson } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  type AgentInfo,
  AgentInfoSchema,
  type HeartbeatRequest,
  HeartbeatRequestSchema,
  type Metrics,
  MetricsSchema,
} from "../../gen/axion/infrastructure/v1/agent_service_pb.js";
import { AppError } from "../kernel/errors.js";
import { jsonInputProblem } from "../kernel/exact-input-json.js";
import { messageInputProblem } from "../kernel/exact-input-message.js";
import { hasUnsafeCharacters } from "../kernel/text.js";

/**
 * The one intake of everything an agent sends (the Connect route, the HTTP/1.1
 * fast path and the Kafka topic): one parser (the proto schema), one validator
 * and one normaliser. Whatever passes here can be written by the batch
 * statement; whatever does not is refused with InvalidArgument naming the field
 * and never joins a batch, so one agent cannot fail another agent's heartbeat.
 */

export const INTAKE_LIMITS = {
  maxDisks: 256,
  maxMountLength: 1024,
  /** Byte counts up to 1 EiB. */
  maxBytes: 1n << 60n,
  /** 100 years. */
  maxUptimeSeconds: 100n * 365n * 86_400n,
  maxLoad: 1_000_000,
  /** A sample time further than this from the database's clock is replaced by the time it was stored. */
  maxSampleSkewMs: 5 * 60_000,
} as const;

/** Per field of AgentInfo: the longest value accepted. */
const INFO_LENGTHS = { hostname: 255, os: 255, kernel: 255, arch: 32, agentVersion: 64 } as const;
const MAX_CPU_COUNT = 1_000_000;

export interface HeartbeatRecord {
  serverId: string;
  /** When the agent took the sample; undefined: the time the database stores it. */
  sampledAt?: Date;
  metrics: Record<string, unknown>;
}

const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A string that PostgreSQL's text and jsonb can hold and a reader can print: bounded, no control characters, valid UTF-16. */
export function textProblem(value: string, maxLength: number): string | undefined {
  if (value.length > maxLength) return `must be at most ${maxLength} characters`;
  // Nothing an agent reports (host names, OS names, mount points) holds them; jsonb refuses NUL and lone surrogates.
  if (hasUnsafeCharacters(value)) return "must not contain control characters or lone surrogates";
  return undefined;
}

function checkText(field: string, value: string, maxLength: number): void {
  const problem = textProblem(value, maxLength);
  if (problem) throw AppError.invalid(field, problem);
}

function checkBytes(field: string, value: bigint, max: bigint = INTAKE_LIMITS.maxBytes): void {
  if (value > max) throw AppError.invalid(field, `must be at most ${max}`);
}

function checkNumber(field: string, value: number, max: number): void {
  if (!Number.isFinite(value) || value < 0 || value > max) throw AppError.invalid(field, `must be a number from 0 to ${max}`);
}

function checkMetrics(metrics: Metrics): void {
  checkNumber("metrics.cpu_percent", metrics.cpuPercent, 100);
  checkBytes("metrics.memory_used_bytes", metrics.memoryUsedBytes);
  checkBytes("metrics.memory_total_bytes", metrics.memoryTotalBytes);
  checkNumber("metrics.load1", metrics.load1, INTAKE_LIMITS.maxLoad);
  checkNumber("metrics.load5", metrics.load5, INTAKE_LIMITS.maxLoad);
  checkNumber("metrics.load15", metrics.load15, INTAKE_LIMITS.maxLoad);
  checkBytes("metrics.uptime_seconds", metrics.uptimeSeconds, INTAKE_LIMITS.maxUptimeSeconds);
  if (metrics.disks.length > INTAKE_LIMITS.maxDisks) throw AppError.invalid("metrics.disks", `at most ${INTAKE_LIMITS.maxDisks} mounts`);
  metrics.disks.forEach((disk, i) => {
    checkText(`metrics.disks[${i}].mount`, disk.mount, INTAKE_LIMITS.maxMountLength);
    checkBytes(`metrics.disks[${i}].used_bytes`, disk.usedBytes);
    checkBytes(`metrics.disks[${i}].total_bytes`, disk.totalBytes);
  });
}

/**
 * A sample time the database can store and that is plausibly now: further
 * than the skew from `databaseNow` (the ingestor's estimate of the database's
 * clock), or absent, it is left to the database to fill in when it stores the
 * heartbeat. Agents with a wrong clock keep being heard; their samples are
 * dated by the database.
 */
function sampleTime(timestamp: Timestamp | undefined, databaseNow: number): Date | undefined {
  if (!timestamp) return undefined;
  const ms = Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1_000_000);
  if (!Number.isFinite(ms) || Math.abs(ms - databaseNow) > INTAKE_LIMITS.maxSampleSkewMs) return undefined;
  return new Date(ms);
}

/** Validates and normalises a heartbeat (whose server id the caller has authenticated). */
export function heartbeatRecord(serverId: string, req: HeartbeatRequest, databaseNow: number): HeartbeatRecord {
  if (!req.metrics) throw AppError.invalid("metrics", "is required");
  checkMetrics(req.metrics);
  return {
    serverId,
    sampledAt: sampleTime(req.sampleTime, databaseNow),
    metrics: toJson(MetricsSchema, req.metrics) as Record<string, unknown>,
  };
}

/** Validates and normalises what an agent reports at registration. */
export function agentInfoRecord(info: AgentInfo | undefined): Record<string, unknown> {
  if (!info) return {};
  for (const [name, max] of Object.entries(INFO_LENGTHS)) {
    checkText(`info.${snake(name)}`, info[name as keyof typeof INFO_LENGTHS], max);
  }
  if (info.cpuCount > MAX_CPU_COUNT) throw AppError.invalid("info.cpu_count", `must be at most ${MAX_CPU_COUNT}`);
  checkBytes("info.memory_total_bytes", info.memoryTotalBytes);
  checkBytes("info.disk_total_bytes", info.diskTotalBytes);
  return toJson(AgentInfoSchema, info) as Record<string, unknown>;
}

/**
 * The JSON form of a Heartbeat request (a fast-path body, a Kafka message body), read exactly as
 * the API's router reads JSON (core/kernel/exact-input-json.ts): a refusal names the field, never echoes the value.
 */
export function parseHeartbeatJson(text: string): HeartbeatRequest {
  const problem = jsonInputProblem(HeartbeatRequestSchema, text);
  if (problem) throw AppError.invalid(problem.field, problem.message);
  let request: HeartbeatRequest;
  try {
    request = fromJsonString(HeartbeatRequestSchema, text);
  } catch {
    throw AppError.invalid("request", "is not a valid HeartbeatRequest");
  }
  const decoded = messageInputProblem(HeartbeatRequestSchema, request);
  if (decoded) throw AppError.invalid(decoded.field, decoded.message);
  return request;
}
