export interface RateLimit {
  /** Calls allowed at once from a full bucket. */
  burst: number;
  /** Calls the bucket refills per minute. */
  perMinute: number;
}

export interface RateLimiter {
  /**
   * Takes `cost` units (default 1) from `key`'s bucket, all or nothing: 0 when allowed, else the
   * milliseconds until they would be (Infinity when `cost` is more than the burst: never).
   */
  take(key: string, cost?: number): number;
}

/** Buckets kept before full ones are forgotten (a full bucket is the same as none). */
const SWEEP_AT = 1000;

/** Token buckets, one per key, in this process' memory. */
export function createRateLimiter(limit: RateLimit, now: () => number = () => performance.now()): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const perMs = limit.perMinute / 60_000;
  const tokensAt = (bucket: { tokens: number; at: number } | undefined, t: number) =>
    bucket ? Math.min(limit.burst, bucket.tokens + (t - bucket.at) * perMs) : limit.burst;

  return {
    take(key, cost = 1) {
      if (cost > limit.burst) return Number.POSITIVE_INFINITY;
      const t = now();
      const tokens = tokensAt(buckets.get(key), t);
      if (tokens < cost) return Math.ceil((cost - tokens) / perMs);
      buckets.set(key, { tokens: tokens - cost, at: t });
      if (buckets.size > SWEEP_AT) {
        for (const [k, bucket] of buckets) if (tokensAt(bucket, t) >= limit.burst) buckets.delete(k);
      }
      return 0;
    },
  };
}
