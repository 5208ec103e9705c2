import type { OperationKind, RolloutServerState, RolloutStatus } from "../core/kernel/kinds.js";
import {
  finishRolloutChild,
  type OpenedChild,
  openRolloutChild,
  pendingOfBatch,
  type RolloutCounts,
  recordBatchFinished,
  rolloutCounts,
  setRolloutServerState,
  setRolloutStatus,
} from "../core/rollouts/rollouts.js";
import type { ActivityDeps } from "./deps.js";

/** The rollout workflow's database steps (local activities): idempotent, by rollout id and position. */
export function createRolloutActivities(deps: ActivityDeps) {
  return {
    rolloutPendingOfBatch(input: { rolloutId: string; batch: number; limit: number }) {
      return pendingOfBatch(deps.db, input.rolloutId, input.batch, input.limit);
    },
    /** Opens the operations of a window's servers, one by one (each may be busy). */
    async openRolloutChildren(input: { rolloutId: string; positions: number[]; kind: OperationKind }): Promise<OpenedChild[]> {
      const opened: OpenedChild[] = [];
      for (const position of input.positions) opened.push(await openRolloutChild(deps.db, input.rolloutId, position, input.kind));
      return opened;
    },
    async setRolloutServerState(input: { rolloutId: string; positions: number[]; state: RolloutServerState; reason?: string }) {
      await setRolloutServerState(deps.db, input.rolloutId, input.positions, input.state, input.reason);
    },
    finishRolloutChild(input: {
      rolloutId: string;
      position: number;
      testOutcome?: { outcome: string; message: string };
    }): Promise<RolloutServerState> {
      return finishRolloutChild(deps.db, input.rolloutId, input.position, input.testOutcome);
    },
    rolloutCounts(input: { rolloutId: string }): Promise<RolloutCounts> {
      return rolloutCounts(deps.db, input.rolloutId);
    },
    recordRolloutBatchFinished(input: { rolloutId: string; batch: number; batchCount: number }): Promise<RolloutCounts> {
      return recordBatchFinished(deps.db, input.rolloutId, input.batch, input.batchCount);
    },
    setRolloutStatus(input: { rolloutId: string; status?: RolloutStatus; reason?: string; currentBatch?: number }): Promise<boolean> {
      return setRolloutStatus(deps.db, input.rolloutId, input);
    },
  };
}
