import type { Redis } from "ioredis";

/** Every consumer that has started, so a live one can find a dead one's processing list. */
export const WORKERS = "provisioner:workers";
export const processingListOf = (workerId: string): string => `provisioner:processing:${workerId}`;
export const heartbeatKeyOf = (workerId: string): string => `provisioner:worker:${workerId}`;

/**
 * Moves a dead worker's in-flight messages back to the head of the queue (oldest first) and
 * forgets the worker, in one step: a worker whose heartbeat key still exists is left alone.
 */
const RECLAIM = `
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local moved = 0
while redis.call('LMOVE', KEYS[3], KEYS[4], 'RIGHT', 'LEFT') do moved = moved + 1 end
redis.call('SREM', KEYS[2], ARGV[1])
return moved`;

export interface WorkerRegistry {
  /** Refreshes this worker's heartbeat key (expires after the TTL) and registers it. */
  beat(): Promise<void>;
  isAlive(workerId: string): Promise<boolean>;
  /** Returns how many messages went back to the queue. */
  reclaimDead(queue: string): Promise<number>;
  /** A stopping worker drops its heartbeat: a live one takes its messages over at its next reclaim. */
  leave(): Promise<void>;
}

export function workerRegistry(redis: Redis, workerId: string, ttlSeconds: number): WorkerRegistry {
  const isAlive = async (id: string) => (await redis.exists(heartbeatKeyOf(id))) === 1;
  return {
    async beat() {
      await redis.multi().set(heartbeatKeyOf(workerId), String(Date.now()), "EX", ttlSeconds).sadd(WORKERS, workerId).exec();
    },
    isAlive,
    async reclaimDead(queue) {
      let moved = 0;
      for (const id of await redis.smembers(WORKERS)) {
        if (id === workerId) continue;
        const n = Number(await redis.eval(RECLAIM, 4, heartbeatKeyOf(id), WORKERS, processingListOf(id), queue, id));
        if (n > 0) moved += n;
      }
      return moved;
    },
    async leave() {
      await redis.del(heartbeatKeyOf(workerId));
    },
  };
}
