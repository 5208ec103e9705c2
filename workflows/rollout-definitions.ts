import { defineQuery, defineUpdate } from "@temporalio/workflow";
import type { BusyPolicy, OperationKind, RolloutKind, RolloutStatus } from "../core/kernel/kinds.js";

/** The rollout workflow's contract with the API: input, progress query, the pause/resume/abort updates. No secrets. */

/** The operation each server of a rollout runs, and the rest of its input. */
export function childOperation(kind: RolloutKind): { kind: OperationKind; options: Record<string, unknown> } {
  switch (kind) {
    case "configure":
      return { kind: "bootstrap", options: {} };
    case "deploy_key_add":
      return { kind: "deploy_key", options: { action: "add" } };
    case "deploy_key_remove":
      return { kind: "deploy_key", options: { action: "remove" } };
    case "recover":
      return { kind: "recovery", options: {} };
    case "install_agent":
      return { kind: "install_agent", options: {} };
    case "test_connection":
      return { kind: "test_connection", options: {} };
  }
}

export interface RolloutInput {
  rolloutId: string;
  kind: RolloutKind;
  /** RECOVER: the disk threshold. */
  diskThresholdPct?: number;
  total: number;
  batchCount: number;
  /** Batch 0 is a canary. */
  hasCanary: boolean;
  /** The rollout stops once this many servers have failed. */
  failureBudget: number;
  batchPauseSeconds: number;
  pauseAfterCanary: boolean;
  busyPolicy: BusyPolicy;
  busyWaitSeconds: number;
  /** Children in flight at once at most (default 200); the rest of a run's servers start as others end. */
  windowSize?: number;
  /** Where this run starts (continue-as-new carries it). */
  batch?: number;
  paused?: boolean;
  pauseReason?: string;
}

export interface RolloutChildProgress {
  position: number;
  serverId?: string;
  state: "pending" | "waiting" | "running" | "ended";
  operationId?: string;
  workflowId?: string;
}

export interface RolloutProgress {
  rolloutId: string;
  status: RolloutStatus;
  /** 0-based; the batch running now, or the next one while paused. */
  batch: number;
  batchCount: number;
  reason: string;
  /** The servers of the window this run operates. */
  window: RolloutChildProgress[];
}

export interface RolloutResult {
  status: RolloutStatus;
  reason: string;
}

export const rolloutProgressQuery = defineQuery<RolloutProgress>("progress");
/** Holds the rollout before its next batch. Rejected (validator) once it has ended or while it is paused. */
export const pauseRolloutUpdate = defineUpdate<RolloutProgress, [{ reason?: string }]>("pause");
/** Rejected unless paused. */
export const resumeRolloutUpdate = defineUpdate<RolloutProgress, []>("resume");
/** Cancels the running children and ends the rollout ABORTED once they have stopped. Rejected once it has ended. */
export const abortRolloutUpdate = defineUpdate<RolloutProgress, [{ reason?: string }]>("abort");
