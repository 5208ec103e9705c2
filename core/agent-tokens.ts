import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { agents } from "../db/schema.js";

const CACHE_TTL_MS = 10_000;

const sha256 = (text: string): Buffer => createHash("sha256").update(text).digest();

/**
 * Per-server agent tokens: 256 random bits, shown once (written to the host by
 * the install activity), stored as a SHA-256 only. Issuing a new one replaces
 * the old hash, so the old token stops working (within the cache TTL).
 */
export async function issueAgentToken(db: Database, serverId: string): Promise<string> {
  const token = `axa_${randomBytes(32).toString("base64url")}`;
  const tokenHash = sha256(token).toString("hex");
  await db
    .insert(agents)
    .values({ serverId, tokenHash, tokenIssuedAt: new Date() })
    .onConflictDoUpdate({ target: agents.serverId, set: { tokenHash, tokenIssuedAt: new Date() } });
  return token;
}

/** The stored token hash per server, cached briefly for the heartbeat hot path (one lookup per server per TTL). */
function storedHashLookup(db: Database) {
  const cache = new Map<string, { hash: Buffer | undefined; expires: number }>();
  return async (serverId: string): Promise<Buffer | undefined> => {
    let entry = cache.get(serverId);
    if (!entry || entry.expires < Date.now()) {
      const [row] = await db.select({ tokenHash: agents.tokenHash }).from(agents).where(eq(agents.serverId, serverId));
      entry = { hash: row ? Buffer.from(row.tokenHash, "hex") : undefined, expires: Date.now() + CACHE_TTL_MS };
      cache.set(serverId, entry);
      if (cache.size > 200_000) cache.delete(cache.keys().next().value as string);
    }
    return entry.hash;
  };
}

/** Verifies that `token` is the current token of `serverId`. */
export function createAgentTokenVerifier(db: Database) {
  const storedHash = storedHashLookup(db);
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

export function createAgentSignatureVerifier(db: Database) {
  const storedHash = storedHashLookup(db);
  return async (serverId: string, body: string, signature: string): Promise<boolean> => {
    const hash = await storedHash(serverId);
    if (!hash || !/^[0-9a-f]{64}$/.test(signature)) return false;
    return timingSafeEqual(createHmac("sha256", hash).update(body).digest(), Buffer.from(signature, "hex"));
  };
}
