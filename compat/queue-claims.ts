import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { OperationKind } from "../core/kernel/kinds.js";
import type { WorkerRegistry } from "./queue-workers.js";

export const messageKeyOf = (identity: string): string => `provisioner:message:${identity}`;

/**
 * What makes two messages the same message: the producer's `message_id` when it sends one,
 * otherwise the SHA-256 of the raw bytes (the seed producer sends no id: the same request
 * pushed again within the dedupe window is the same message).
 */
export function messageIdentity(raw: string, messageId?: string): string {
  return messageId ? `id:${messageId}` : `sha256:${createHash("sha256").update(raw).digest("hex")}`;
}

export interface QueueResult {
  server_handle: string | null;
  status: "success" | "failed" | "rejected";
  kind?: OperationKind;
  operation_id?: string;
  workflow_id?: string;
  error?: string;
  finished_at: string;
}

/**
 * A message's progress, kept under its identity: claimed by a worker (with the newest operation
 * start on the server at that moment, so a taker-over can find an operation the claimer started
 * but did not record), started (the operation), finished (the result, answered to replays).
 */
export type Claim =
  | { state: "claimed"; worker: string; server_id: string; kind: OperationKind; after: string | null }
  | {
      state: "started";
      worker: string;
      server_id: string;
      kind: OperationKind;
      operation_id: string;
      workflow_id: string;
      run_id: string | null;
    }
  | { state: "finished"; result: QueueResult };

export type InFlightClaim = Exclude<Claim, { state: "finished" }>;
export type Acquired = { mine: InFlightClaim; stored: string } | { finished: QueueResult } | { busy: true };

/** Replaces the value only if it is still what this worker last saw. */
const COMPARE_AND_SET = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1`;

/** Longer than any workflow runs (a reinstall may wait 2 h for the rebuild, then bootstraps). */
const IN_FLIGHT_TTL_SECONDS = 7 * 86_400;

export function messageClaims(redis: Redis, registry: WorkerRegistry, workerId: string) {
  return {
    /** Claims a message for this worker, takes over a dead worker's claim, or says what is known. */
    async acquire(identity: string, fresh: InFlightClaim): Promise<Acquired> {
      const key = messageKeyOf(identity);
      for (;;) {
        const stored = JSON.stringify(fresh);
        if ((await redis.set(key, stored, "EX", IN_FLIGHT_TTL_SECONDS, "NX")) === "OK") return { mine: fresh, stored };
        const current = await redis.get(key);
        if (current === null) continue;
        const held = JSON.parse(current) as Claim;
        if (held.state === "finished") return { finished: held.result };
        if (await registry.isAlive(held.worker)) return { busy: true };
        const taken = JSON.stringify({ ...held, worker: workerId });
        if (Number(await redis.eval(COMPARE_AND_SET, 1, key, current, taken, IN_FLIGHT_TTL_SECONDS)) === 1)
          return { mine: JSON.parse(taken) as InFlightClaim, stored: taken };
      }
    },
    /** Records progress on a claim this worker holds; false when another worker has taken it over. */
    async advance(identity: string, stored: string, next: Claim): Promise<boolean> {
      return (
        Number(await redis.eval(COMPARE_AND_SET, 1, messageKeyOf(identity), stored, JSON.stringify(next), IN_FLIGHT_TTL_SECONDS)) === 1
      );
    },
  };
}
