import { setHandler, workflowInfo } from "@temporalio/workflow";
import type { StatusActor } from "../core/inventory/server-status.js";
import type { OperationKind } from "../core/kernel/kinds.js";
import { type OperationInput, type OperationProgress, progressQuery, type StepProgress, type StepResult } from "./definitions.js";
import { failureMessage } from "./failure-types.js";

/** Tracks an operation's steps and answers the progress query (current step, finished steps with durations, last error). */
export class ProgressTracker {
  readonly state: OperationProgress;

  constructor(input: OperationInput, kind: OperationKind) {
    this.state = { operationId: input.operationId, serverId: input.serverId, kind, steps: [], done: false };
    setHandler(progressQuery, () => this.state);
  }

  /** Runs one step; a step result with `changed: false` is reported as already done. */
  async step<T>(name: string, run: () => Promise<T>): Promise<T> {
    const started = Date.now();
    const entry: StepProgress = { name, status: "running", startedAt: new Date(started).toISOString() };
    this.state.steps.push(entry);
    this.state.currentStep = name;
    try {
      const result = await run();
      const outcome = result as Partial<StepResult> & { skipped?: boolean };
      entry.status = outcome?.skipped ? "skipped" : outcome?.changed === false ? "unchanged" : "done";
      if (typeof outcome?.detail === "string") entry.detail = outcome.detail;
      return result;
    } catch (error) {
      entry.status = "failed";
      this.state.lastError = failureMessage(error);
      throw error;
    } finally {
      entry.durationMs = Date.now() - started;
      this.state.currentStep = undefined;
    }
  }

  /** Who writes this operation's server statuses, for the state machine. */
  get actor(): StatusActor {
    return { by: "operation", kind: this.state.kind, operationId: this.state.operationId };
  }

  /** The step that was running when the operation stopped (it is marked failed by then). */
  get lastStep(): string | undefined {
    return this.state.steps.at(-1)?.name;
  }

  finish(): OperationProgress {
    this.state.done = true;
    return this.state;
  }

  summary(): Record<string, unknown> {
    return { workflowId: workflowInfo().workflowId, steps: this.state.steps };
  }
}
