import { defineQuery, defineSignal } from "@temporalio/workflow";
import type { ConnectionOutcome, OperationKind, PlanOutcome, RolloutKind } from "../core/kernel/kinds.js";

/** Shared by workflows, activities and the API: typed query definitions and payload shapes. No secrets in any of them. */

export interface StepProgress {
  name: string;
  status: "running" | "done" | "unchanged" | "skipped" | "failed";
  detail?: string;
  startedAt: string;
  durationMs?: number;
}

export interface OperationProgress {
  operationId: string;
  kind: OperationKind;
  serverId: string;
  currentStep?: string;
  steps: StepProgress[];
  lastError?: string;
  done: boolean;
}

export const progressQuery = defineQuery<OperationProgress>("progress");

export interface OperationInput {
  operationId: string;
  serverId: string;
  /** Run as a step of a parent operation (a reinstall's bootstrap): the parent records the outcome. */
  nested?: boolean;
}

/** What one idempotent step reports: whether it had to change anything. */
export interface StepResult {
  changed: boolean;
  detail: string;
}

export interface HostFacts {
  osId: string;
  osVersion: string;
  osPrettyName: string;
  arch: string;
  kernel: string;
  rootFreeMb: number;
  memoryMb: number;
  dockerVersion?: string;
}

export interface ConnectionTestResult {
  outcome: ConnectionOutcome;
  message: string;
  fingerprint?: string;
  facts?: HostFacts;
}

export interface MountUsage {
  mount: string;
  usedPct: number;
  availableMb: number;
}

export interface Diagnosis {
  mounts: MountUsage[];
  /** "stopped": installed, its service not active (found through systemd, without asking Docker). */
  docker: "responsive" | "unresponsive" | "stopped" | "absent";
  journalMb: number;
}

export interface RecoveryInput extends OperationInput {
  /** A mount at or above this use is remediated. Default 85. */
  diskThresholdPct?: number;
  /** What the journal is vacuumed down to. Default 200. */
  journalMaxMb?: number;
}

export interface RecoveryReport {
  before: Diagnosis;
  after: Diagnosis;
  actions: string[];
  healthy: boolean;
}

export interface ReinstallInput extends OperationInput {
  /** Provider OS code; empty means the provider's first offered OS. */
  os?: string;
  /** Seconds between provider task polls (durable timers). Default 15. */
  pollIntervalSeconds?: number;
}

export interface HeartbeatMonitorInput {
  /** A server whose last heartbeat is older than this is OFFLINE. */
  timeoutSeconds: number;
  /** Seconds between sweeps. */
  intervalSeconds: number;
  /** Start a recovery workflow for each server that goes OFFLINE, at most `maxOfflineRecoveries` running at once. */
  recoverOffline: boolean;
  maxOfflineRecoveries: number;
  metricsRetentionHours: number;
  outboxRetentionHours: number;
  /** Audit entries older than this are pruned to a checkpoint (core/audit/retention.ts); unset (a monitor started by an earlier release): none are. */
  auditRetentionDays?: number;
  ingestionProgressRetentionHours: number;
  /** An ingestion instance silent this long no longer holds the sweep back (`AGENT_INSTANCE_DEAD_AFTER`); unset: its default. */
  instanceDeadAfterSeconds?: number;
}

/**
 * Hands the running heartbeat monitor new settings. Every worker sends it at
 * start; the monitor then continues as new, so its next run uses this worker's
 * workflow code (see temporal/heartbeat-monitor.ts).
 */
export const monitorSettingsSignal = defineSignal<[HeartbeatMonitorInput]>("settings");
/** The settings the heartbeat monitor sweeps with now. */
export const monitorSettingsQuery = defineQuery<HeartbeatMonitorInput>("settings");

export interface StepPlan {
  name: string;
  outcome: PlanOutcome;
  detail: string;
}

/** One server's plan: `cannot` with a reason when it cannot be operated (busy, unreachable, host key changed, wrong OS). */
export interface ServerPlan {
  serverId: string;
  serverName: string;
  outcome: PlanOutcome;
  reason?: string;
  steps: StepPlan[];
}

export interface PlanInput {
  kind: RolloutKind;
  serverIds: string[];
  /** How many servers are checked at once; default 20 (workflows/plan.ts). */
  concurrency?: number;
}

export interface PlanResult {
  servers: ServerPlan[];
}
