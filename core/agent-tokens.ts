import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { inArray, sql } from "drizzle-orm";
import type { Database, Listen } from "../db/client.js";
import { agents } from "../db/schema.js";
import { errorSummary, log } from "./log.js";

/** NOTIFY channel whose payload is the server id of a token just issued or rotated. */
export const AGENT_TOKEN_CHANNEL = "axion_agent_token_changed";
/** How long a looked-up hash is trusted without a change notification (a safety net: notifications evict at once). */
const CACHE_TTL_MS = 10 * 60_000;
/** Without notifications (no `listen`), a rotated token keeps working at most this long. */
const UNNOTIFIED_CACHE_TTL_MS = 10_000;
const MAX_CACHED = 500_000;

const sha256 = (text: string): Buffer => createHash("sha256").update(text).digest();

/**
 * Per-server agent tokens: 256 random bits, shown once (written to the host by
 * the install activity), stored as a SHA-256 only. Issuing a new one replaces
 * the old hash and notifies every API process, so the old token stops working.
 */
export async function issueAgentToken(db: Database, serverId: string): Promise<string> {
  const token = `axa_${randomBytes(32).toString("base64url")}`;
  const tokenHash = sha256(token).toString("hex");
  await db.transaction(async (tx) => {
    await tx
      .insert(agents)
      .values({ serverId, tokenHash, tokenIssuedAt: new Date() })
      .onConflictDoUpdate({ target: agents.serverId, set: { tokenHash, tokenIssuedAt: new Date() } });
    await tx.execute(sql`select pg_notify(${AGENT_TOKEN_CHANNEL}, ${serverId})`);
  });
  return token;
}

type Lookup = (serverId: string) => Promise<Buffer | undefined>;

/**
 * The stored token hash per server for the heartbeat hot path. Hashes stay
 * cached until a rotation notification evicts them; lookups that miss in the
 * same event-loop turn share one query (a fleet of agents starting at once
 * costs a few queries, not one per agent).
 */
function storedHashLookup(db: Database, listen?: Listen): Lookup {
  const cache = new Map<string, { hash: Buffer | undefined; expires: number }>();
  let ttl = UNNOTIFIED_CACHE_TTL_MS;
  /** Bumped by every eviction: a lookup that started before it must not cache what it read. */
  let generation = 0;
  let waiting = new Map<string, { resolve: (hash: Buffer | undefined) => void; reject: (error: unknown) => void }[]>();

  if (listen) {
    void listen(
      AGENT_TOKEN_CHANNEL,
      (serverId) => {
        generation += 1;
        cache.delete(serverId);
      },
      () => {
        // (Re)connected: notifications sent while disconnected are lost.
        generation += 1;
        cache.clear();
        ttl = CACHE_TTL_MS;
      },
    ).catch((error) => log.warn("agent token notifications unavailable; cached tokens expire after 10 s", errorSummary(error)));
  }

  const fetchWaiting = async () => {
    const batch = waiting;
    waiting = new Map();
    const started = generation;
    const found = new Map<string, Buffer>();
    try {
      const ids = [...batch.keys()];
      for (let at = 0; at < ids.length; at += 5000) {
        const rows = await db
          .select({ serverId: agents.serverId, tokenHash: agents.tokenHash })
          .from(agents)
          .where(inArray(agents.serverId, ids.slice(at, at + 5000)));
        for (const row of rows) found.set(row.serverId, Buffer.from(row.tokenHash, "hex"));
      }
    } catch (error) {
      // Not "invalid token": the agent must retry, not conclude its token is wrong.
      for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error);
      return;
    }
    const expires = Date.now() + ttl;
    for (const [serverId, waiters] of batch) {
      const hash = found.get(serverId);
      if (generation === started) {
        cache.set(serverId, { hash, expires });
        if (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value as string);
      }
      for (const waiter of waiters) waiter.resolve(hash);
    }
  };

  return (serverId) => {
    const entry = cache.get(serverId);
    if (entry && entry.expires > Date.now()) return Promise.resolve(entry.hash);
    return new Promise((resolve, reject) => {
      const waiters = waiting.get(serverId);
      if (waiters) return waiters.push({ resolve, reject });
      if (waiting.size === 0) setImmediate(() => void fetchWaiting());
      waiting.set(serverId, [{ resolve, reject }]);
    });
  };
}

/** Verifies that `token` is the current token of `serverId`. */
export function createAgentTokenVerifier(db: Database, listen?: Listen) {
  const storedHash = storedHashLookup(db, listen);
  return async (serverId: string, token: string): Promise<boolean> => {
    const hash = await storedHash(serverId);
    return hash !== undefined && timingSafeEqual(sha256(token), hash);
  };
}

/**
 * Heartbeats that arrive through Kafka carry no token (a token must never be
 * in a Kafka message): they are signed with HMAC-SHA256 keyed by the token's
 * SHA-256, which the agent derives and the database stores.
 */
export function signHeartbeat(token: string, body: string): string {
  return createHmac("sha256", sha256(token)).update(body).digest("hex");
}

export function createAgentSignatureVerifier(db: Database, listen?: Listen) {
  const storedHash = storedHashLookup(db, listen);
  return async (serverId: string, body: string, signature: string): Promise<boolean> => {
    const hash = await storedHash(serverId);
    if (!hash || !/^[0-9a-f]{64}$/.test(signature)) return false;
    return timingSafeEqual(createHmac("sha256", hash).update(body).digest(), Buffer.from(signature, "hex"));
  };
}
