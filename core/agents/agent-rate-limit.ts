/**
 * Per-agent token bucket for what agents send (Register, Heartbeat), in each
 * API process: `perInterval` calls per heartbeat interval on average, with
 * bursts of twice that. Only authenticated agents get a bucket, so the map is
 * bounded by the fleet; full buckets are dropped now and then.
 */
export function createAgentRateLimiter(options: { perInterval: number; intervalSeconds: number }) {
  const capacity = options.perInterval * 2;
  const perMs = options.perInterval / (options.intervalSeconds * 1000);
  const buckets = new Map<string, { tokens: number; at: number }>();
  let lastPrune = Date.now();

  const prune = (now: number) => {
    lastPrune = now;
    for (const [id, bucket] of buckets) if (bucket.tokens + (now - bucket.at) * perMs >= capacity) buckets.delete(id);
  };

  /** Takes one call from the agent's bucket; false when it has none left. */
  return (serverId: string): boolean => {
    const now = Date.now();
    if (now - lastPrune > 60_000) prune(now);
    const bucket = buckets.get(serverId);
    if (!bucket) {
      buckets.set(serverId, { tokens: capacity - 1, at: now });
      return true;
    }
    bucket.tokens = Math.min(capacity, bucket.tokens + (now - bucket.at) * perMs);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  };
}
