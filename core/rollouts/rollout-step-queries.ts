import { type OperationProgress, progressQuery } from "../../workflows/contract.js";
import type { WorkflowGateway } from "../operations/provisioning.js";

/** A running server of a rollout whose workflow can be asked for its current step. */
export interface RunningServer {
  position: number;
  workflowId: string;
  runId?: string | null;
}

export interface RolloutStepQueries {
  /**
   * The current step of each running server (by position), asked of their workflows.
   * Callers reading one rollout at once share one round of queries, and its answer
   * for `freshMs` after; an owner has at most `perOwner` queries in flight, servers
   * past that show no step this time.
   */
  stepsOf(ownerId: string, rolloutId: string, running: RunningServer[]): Promise<Map<number, string>>;
}

export interface RolloutStepQueryOptions {
  /** Temporal queries in flight for one owner (ROLLOUT_QUERIES_PER_OWNER). */
  perOwner: number;
  /** How long an answer is reused by later callers of the same rollout. Default 1 s. */
  freshMs?: number;
}

/**
 * Each progress query costs the Temporal server and the worker ~10 ms of CPU
 * (bench/temporal-overhead.ts --queries): without coalescing, N callers of one
 * rollout cost N × 20 queries; with it, 20 per `freshMs`.
 */
export function createRolloutStepQueries(gateway: WorkflowGateway, options: RolloutStepQueryOptions): RolloutStepQueries {
  const freshMs = options.freshMs ?? 1000;
  const rounds = new Map<string, { settledAt?: number; answer: Promise<Map<number, string>> }>();
  const inFlight = new Map<string, number>();

  const ask = async (ownerId: string, running: RunningServer[]): Promise<Map<number, string>> => {
    const room = Math.max(0, options.perOwner - (inFlight.get(ownerId) ?? 0));
    const asked = running.slice(0, room);
    const steps = new Map<number, string>();
    if (asked.length === 0) return steps;
    inFlight.set(ownerId, (inFlight.get(ownerId) ?? 0) + asked.length);
    try {
      await Promise.all(
        asked.map(async (s) => {
          const progress = await gateway.client.workflow
            .getHandle(s.workflowId, s.runId ?? undefined)
            .query<OperationProgress>(progressQuery)
            .catch(() => undefined);
          if (progress?.currentStep) steps.set(s.position, progress.currentStep);
        }),
      );
    } finally {
      const left = (inFlight.get(ownerId) ?? asked.length) - asked.length;
      if (left > 0) inFlight.set(ownerId, left);
      else inFlight.delete(ownerId);
    }
    return steps;
  };

  return {
    stepsOf(ownerId, rolloutId, running) {
      if (running.length === 0) return Promise.resolve(new Map());
      // Rollout ids are the owner's; the key includes the owner all the same.
      const key = `${ownerId}/${rolloutId}`;
      const round = rounds.get(key);
      if (round && (round.settledAt === undefined || performance.now() - round.settledAt < freshMs)) return round.answer;
      const answer = ask(ownerId, running);
      const entry: { settledAt?: number; answer: Promise<Map<number, string>> } = { answer };
      rounds.set(key, entry);
      // Shared while in flight and for `freshMs` after its answer; then forgotten.
      void answer.finally(() => {
        entry.settledAt = performance.now();
        setTimeout(() => {
          if (rounds.get(key) === entry) rounds.delete(key);
        }, freshMs).unref();
      });
      return answer;
    },
  };
}
