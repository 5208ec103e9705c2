import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { and, eq, inArray, sql } from "drizzle-orm";
import type { Database, Listen } from "../../db/client.js";
import { agents } from "../../db/schema.js";
import { errorSummary, log } from "../kernel/log.js";
import type { CredentialsCipher } from "../security/credentials-cipher.js";

/** NOTIFY channel whose payload is the server id of a token just issued, promoted or rotated. */
export const AGENT_TOKEN_CHANNEL = "axion_agent_token_changed";
/** How long a looked-up hash is trusted without a change notification (a safety net: notifications evict at once). */
const CACHE_TTL_MS = 10 * 60_000;
/** Without notifications (no `listen`), a rotated token keeps working at most this long. */
const UNNOTIFIED_CACHE_TTL_MS = 10_000;
const MAX_CACHED = 500_000;
/** Label of the Kafka signing key derivation: the key is HMAC-SHA256(token, label). */
export const KAFKA_KEY_LABEL = "axion-kafka-heartbeat-v2";

const sha256 = (text: string): Buffer => createHash("sha256").update(text).digest();

/** The key an agent signs its Kafka heartbeats with, derived from its token (never the stored hash). */
export function kafkaSigningKey(token: string): Buffer {
  return createHmac("sha256", token).update(KAFKA_KEY_LABEL).digest();
}

/**
 * Per-server agent tokens: 256 random bits, shown once (written to the host by
 * the install activity), stored as a SHA-256 only, next to the Kafka signing
 * key encrypted with the credentials cipher (bound to the server id).
 *
 * `pending`: a reinstall's token. It is accepted next to the current one, and
 * the first Register or Heartbeat that uses it promotes it (the old token then
 * stops working), so an install that fails before the new agent runs leaves
 * the running agent working. A server without a token gets it as current.
 * Every change notifies every API process, which drops its cached hashes.
 */
export async function issueAgentToken(
  db: Database,
  serverId: string,
  options: { cipher?: CredentialsCipher; pending?: boolean } = {},
): Promise<string> {
  const token = `axa_${randomBytes(32).toString("base64url")}`;
  const tokenHash = sha256(token).toString("hex");
  const kafkaKey = options.cipher?.encrypt(kafkaSigningKey(token).toString("base64"), serverId) ?? null;
  await db.transaction(async (tx) => {
    const current = { tokenHash, tokenIssuedAt: sql`now()`, kafkaKey, pendingTokenHash: null, pendingKafkaKey: null };
    const set = options.pending
      ? { pendingTokenHash: tokenHash, pendingTokenIssuedAt: sql`now()`, pendingKafkaKey: kafkaKey }
      : { ...current, pendingTokenIssuedAt: null };
    await tx
      .insert(agents)
      .values({ serverId, ...current })
      .onConflictDoUpdate({ target: agents.serverId, set });
    await tx.execute(sql`select pg_notify(${AGENT_TOKEN_CHANNEL}, ${serverId})`);
  });
  return token;
}

/** Makes the pending token current (if it still is the pending one): the old token stops working everywhere at once. */
async function promotePendingToken(db: Database, serverId: string, pendingHash: string): Promise<void> {
  await db.transaction(async (tx) => {
    const promoted = await tx
      .update(agents)
      .set({
        tokenHash: sql`${agents.pendingTokenHash}`,
        tokenIssuedAt: sql`${agents.pendingTokenIssuedAt}`,
        kafkaKey: sql`${agents.pendingKafkaKey}`,
        pendingTokenHash: null,
        pendingTokenIssuedAt: null,
        pendingKafkaKey: null,
      })
      .where(and(eq(agents.serverId, serverId), eq(agents.pendingTokenHash, pendingHash)))
      .returning({ serverId: agents.serverId });
    if (promoted.length > 0) await tx.execute(sql`select pg_notify(${AGENT_TOKEN_CHANNEL}, ${serverId})`);
  });
}

interface StoredHashes {
  current: Buffer;
  pending?: Buffer;
}
interface Lookup {
  (serverId: string): Promise<StoredHashes | undefined>;
  /** Forgets what this process knows of the server's tokens (its own change, before the notification comes back). */
  evict(serverId: string): void;
}

/**
 * The stored token hashes per server for the heartbeat hot path. Hashes stay
 * cached until a change notification evicts them; lookups that miss in the
 * same event-loop turn share one query (a fleet of agents starting at once
 * costs a few queries, not one per agent).
 */
function storedHashLookup(db: Database, listen?: Listen): Lookup {
  const cache = new Map<string, { hashes: StoredHashes | undefined; expires: number }>();
  let ttl = UNNOTIFIED_CACHE_TTL_MS;
  /** Bumped by every eviction: a lookup that started before it must not cache what it read. */
  let generation = 0;
  let waiting = new Map<string, { resolve: (hashes: StoredHashes | undefined) => void; reject: (error: unknown) => void }[]>();

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
    const found = new Map<string, StoredHashes>();
    try {
      const ids = [...batch.keys()];
      for (let at = 0; at < ids.length; at += 5000) {
        const rows = await db
          .select({ serverId: agents.serverId, tokenHash: agents.tokenHash, pendingTokenHash: agents.pendingTokenHash })
          .from(agents)
          .where(inArray(agents.serverId, ids.slice(at, at + 5000)));
        for (const row of rows) {
          found.set(row.serverId, {
            current: Buffer.from(row.tokenHash, "hex"),
            pending: row.pendingTokenHash ? Buffer.from(row.pendingTokenHash, "hex") : undefined,
          });
        }
      }
    } catch (error) {
      // Not "invalid token": the agent must retry, not conclude its token is wrong.
      for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error);
      return;
    }
    const expires = Date.now() + ttl;
    for (const [serverId, waiters] of batch) {
      const hashes = found.get(serverId);
      if (generation === started) {
        cache.set(serverId, { hashes, expires });
        if (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value as string);
      }
      for (const waiter of waiters) waiter.resolve(hashes);
    }
  };

  const lookup = (serverId: string) => {
    const entry = cache.get(serverId);
    if (entry && entry.expires > Date.now()) return Promise.resolve(entry.hashes);
    return new Promise<StoredHashes | undefined>((resolve, reject) => {
      const waiters = waiting.get(serverId);
      if (waiters) return waiters.push({ resolve, reject });
      if (waiting.size === 0) setImmediate(() => void fetchWaiting());
      waiting.set(serverId, [{ resolve, reject }]);
    });
  };
  return Object.assign(lookup, {
    evict(serverId: string) {
      generation += 1;
      cache.delete(serverId);
    },
  });
}

/**
 * Verifies that `token` is the current or the pending token of `serverId`; the
 * pending one is promoted before the answer, so from then on only it works.
 */
export function createAgentTokenVerifier(db: Database, listen?: Listen) {
  const storedHash = storedHashLookup(db, listen);
  return async (serverId: string, token: string): Promise<boolean> => {
    const hashes = await storedHash(serverId);
    if (!hashes) return false;
    const presented = sha256(token);
    if (timingSafeEqual(presented, hashes.current)) return true;
    if (!hashes.pending || !timingSafeEqual(presented, hashes.pending)) return false;
    await promotePendingToken(db, serverId, hashes.pending.toString("hex"));
    storedHash.evict(serverId);
    return true;
  };
}

/**
 * Kafka heartbeats carry no token (a token must never be in a Kafka message).
 * They are signed with HMAC-SHA256 keyed by `kafkaSigningKey(token)`, over the
 * server id (the message key), the sequence and the body, so a reader of the
 * database (which holds only the token's SHA-256 and the key encrypted under
 * CREDENTIALS_KEY) cannot sign, and a message cannot be re-keyed or replayed.
 */
export function kafkaSignedText(serverId: string, sequence: bigint, body: string): string {
  return `${KAFKA_KEY_LABEL}\n${serverId}\n${sequence}\n${body}`;
}

export function signHeartbeat(token: string, serverId: string, sequence: bigint, body: string): string {
  return createHmac("sha256", kafkaSigningKey(token))
    .update(kafkaSignedText(serverId, sequence, body))
    .digest("hex");
}

export interface SignedHeartbeat {
  serverId: string;
  sequence: bigint;
  body: string;
  signature: string;
}

/**
 * Verifies a Kafka batch (one query for the whole batch): a message is
 * accepted when signed with the server's current or pending key and its
 * sequence is above every sequence accepted before for that server (messages
 * of one server arrive in order: the server id is the message key).
 * `commit` then records the highest sequences accepted.
 */
export function createKafkaHeartbeatVerifier(db: Database, cipher: CredentialsCipher) {
  const decrypted = new Map<string, Buffer>();
  const keyOf = (envelope: string | null, serverId: string): Buffer | undefined => {
    if (!envelope) return undefined;
    let key = decrypted.get(envelope);
    if (!key) {
      try {
        key = Buffer.from(cipher.decrypt(envelope, serverId), "base64");
      } catch (error) {
        log.warn("a Kafka signing key cannot be decrypted", { serverId, ...errorSummary(error) });
        return undefined;
      }
      if (decrypted.size > MAX_CACHED) decrypted.clear();
      decrypted.set(envelope, key);
    }
    return key;
  };
  const signedBy = (key: Buffer | undefined, message: SignedHeartbeat, signature: Buffer) =>
    key !== undefined &&
    timingSafeEqual(
      createHmac("sha256", key)
        .update(kafkaSignedText(message.serverId, message.sequence, message.body))
        .digest(),
      signature,
    );

  return async (messages: SignedHeartbeat[]): Promise<{ accepted: boolean[]; commit: () => Promise<void> }> => {
    const ids = [...new Set(messages.map((m) => m.serverId))];
    const rows =
      ids.length === 0
        ? []
        : await db
            .select({
              serverId: agents.serverId,
              kafkaKey: agents.kafkaKey,
              pendingKafkaKey: agents.pendingKafkaKey,
              sequence: agents.kafkaSequence,
            })
            .from(agents)
            .where(inArray(agents.serverId, ids));
    const byServer = new Map(rows.map((r) => [r.serverId, r]));
    const highest = new Map<string, bigint>();
    const accepted = messages.map((message) => {
      const row = byServer.get(message.serverId);
      if (!row || !/^[0-9a-f]{64}$/.test(message.signature)) return false;
      const signature = Buffer.from(message.signature, "hex");
      if (
        !signedBy(keyOf(row.kafkaKey, row.serverId), message, signature) &&
        !signedBy(keyOf(row.pendingKafkaKey, row.serverId), message, signature)
      )
        return false;
      const last = highest.get(message.serverId) ?? row.sequence;
      if (message.sequence <= last) return false;
      highest.set(message.serverId, message.sequence);
      return true;
    });
    return {
      accepted,
      async commit() {
        if (highest.size === 0) return;
        const values = JSON.stringify([...highest].map(([id, seq]) => ({ id, seq: seq.toString() })));
        await db.execute(sql`
          update agents a set kafka_sequence = greatest(a.kafka_sequence, v.seq)
          from jsonb_to_recordset(${values}::jsonb) as v(id uuid, seq bigint)
          where a.server_id = v.id`);
      },
    };
  };
}
