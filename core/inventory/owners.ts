import { createHash, randomBytes } from "node:crypto";
import { and, asc, count, eq, gt, isNull, lt, ne, or, sql } from "drizzle-orm";
import { z } from "zod";
import type { Database, Transaction } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { apiTokens, owners } from "../../db/schema.js";
import { ConfigError } from "../kernel/config.js";
import { AppError } from "../kernel/errors.js";
import { requireId } from "../kernel/ids.js";
import { type Role, roles } from "../kernel/kinds.js";
import { errorSummary, log } from "../kernel/log.js";
import { type PageRequest, toPage } from "../kernel/pagination.js";
import { hasUnsafeCharacters } from "../kernel/text.js";
import { parseInput } from "../kernel/validation.js";
import { requireCluster } from "./clusters.js";
import { roleAtLeast } from "./owner-scope.js";

/** Who acts: an owner (today's organization) through one of its tokens, with that token's role and clusters. */
export interface Owner {
  id: string;
  name: string;
  /** The token the request authenticated with (set by `ownerForToken`). */
  tokenId?: string;
  /** The token's role; what it may call is `api/permissions.ts`. */
  role: Role;
  /** The clusters the token is limited to; absent: all of the owner's. Out of scope is NotFound (core/inventory/owner-scope.ts). */
  clusterIds?: readonly string[];
}

export const ADMIN_OWNER = "admin";
/** Label of the token made from `AXION_ADMIN_TOKEN`. Reserved: no other token may carry it, so a changed value can find the old one. */
export const ENV_TOKEN_LABEL = "AXION_ADMIN_TOKEN";
/** Tokens an owner may hold that are neither revoked nor expired (through the API; the operator command is not limited). */
export const MAX_LIVE_TOKENS_PER_OWNER = 100;
const MAX_EXPIRY_AHEAD_MS = 3650 * 86_400_000;
/** `last_used_at` is kept to this resolution: at most one write per token per this interval. */
const LAST_USED_RESOLUTION_MS = 60_000;

/** Tokens are looked up by their SHA-256: a 256-bit random token needs no slow hash, and the lookup is an index probe. */
export const hashToken = (token: string): string => createHash("sha256").update(token).digest("hex");

export const generateToken = (): string => `axn_${randomBytes(32).toString("base64url")}`;

/**
 * The start of a token that may be shown: "axn_" and 8 of its 43 random characters. A token of
 * another form (AXION_ADMIN_TOKEN, at least 16 characters) shows at most a quarter of itself.
 */
export function tokenPrefix(token: string): string {
  const marker = token.startsWith("axn_") ? "axn_" : "";
  const body = token.slice(marker.length);
  return marker + body.slice(0, Math.min(8, Math.floor(body.length / 4)));
}

/** Everything about a token except its hash. */
const tokenColumns = {
  id: apiTokens.id,
  ownerId: apiTokens.ownerId,
  label: apiTokens.label,
  tokenPrefix: apiTokens.tokenPrefix,
  createdAt: apiTokens.createdAt,
  lastUsedAt: apiTokens.lastUsedAt,
  expiresAt: apiTokens.expiresAt,
  revokedAt: apiTokens.revokedAt,
  role: apiTokens.role,
  clusterIds: apiTokens.clusterIds,
  createdByTokenId: apiTokens.createdByTokenId,
};
export type TokenView = Omit<typeof apiTokens.$inferSelect, "tokenHash">;

const live = () => and(isNull(apiTokens.revokedAt), or(isNull(apiTokens.expiresAt), gt(apiTokens.expiresAt, sql`now()`)));

const label = z
  .string()
  .max(64, "must be at most 64 characters")
  .refine((v) => !hasUnsafeCharacters(v), "must not contain control characters")
  .refine((v) => v !== ENV_TOKEN_LABEL, `${ENV_TOKEN_LABEL} is reserved for the token from the environment`);

/** Milliseconds since the epoch, at most 10 years ahead; `future` also refuses times already past. */
const expireTime = (future: boolean) =>
  z
    .number()
    .refine((ms) => ms > 0, "must be after 1970")
    .refine((ms) => !future || ms > Date.now(), "must be in the future")
    .refine((ms) => ms <= Date.now() + MAX_EXPIRY_AHEAD_MS, "must be at most 10 years ahead");

/** Creates (or finds) an owner by name and adds a token to it. Returns the token: it is shown once and never stored. */
export async function createOwnerToken(
  db: Database,
  ownerName: string,
  token = generateToken(),
  tokenLabel = "",
  expiresAt?: Date,
): Promise<{ owner: Owner; token: string; tokenId: string }> {
  return db.transaction(async (tx) => {
    await tx.insert(owners).values({ id: newId(), name: ownerName }).onConflictDoNothing({ target: owners.name });
    const [owner] = await tx.select({ id: owners.id, name: owners.name }).from(owners).where(eq(owners.name, ownerName));
    if (!owner) throw new Error(`owner ${ownerName} could not be created`);
    const tokenHash = hashToken(token);
    await tx
      .insert(apiTokens)
      .values({ id: newId(), ownerId: owner.id, tokenHash, label: tokenLabel, tokenPrefix: tokenPrefix(token), expiresAt, role: "admin" })
      .onConflictDoNothing({ target: apiTokens.tokenHash });
    const [row] = await tx.select({ id: apiTokens.id }).from(apiTokens).where(eq(apiTokens.tokenHash, tokenHash));
    return { owner: { ...owner, role: "admin" as const }, token, tokenId: (row as { id: string }).id };
  });
}

/**
 * At start: the `admin` owner holds `AXION_ADMIN_TOKEN`, and the token an earlier value of the
 * variable created is revoked. A value whose token was already revoked (through the API, or
 * superseded by a newer value: an old process restarting during a rollout) stays refused and
 * revokes nothing, so two values cannot take turns revoking each other.
 */
export async function ensureAdminToken(db: Database, token: string): Promise<void> {
  const tokenHash = hashToken(token);
  const outcome = await db.transaction(async (tx) => {
    await tx.insert(owners).values({ id: newId(), name: ADMIN_OWNER }).onConflictDoNothing({ target: owners.name });
    // The owner row lock serialises concurrent starts.
    const [admin] = await tx.select({ id: owners.id }).from(owners).where(eq(owners.name, ADMIN_OWNER)).for("update");
    if (!admin) throw new Error("the admin owner could not be created");
    await tx
      .insert(apiTokens)
      .values({ id: newId(), ownerId: admin.id, tokenHash, label: ENV_TOKEN_LABEL, tokenPrefix: tokenPrefix(token), role: "admin" })
      .onConflictDoNothing({ target: apiTokens.tokenHash });
    const [row] = await tx
      .select({ ownerId: apiTokens.ownerId, isLive: sql<boolean>`${live()}` })
      .from(apiTokens)
      .where(eq(apiTokens.tokenHash, tokenHash));
    if (row?.ownerId !== admin.id) return "foreign" as const;
    if (!row.isLive) return "refused" as const;
    const revoked = await tx
      .update(apiTokens)
      .set({ revokedAt: sql`now()` })
      .where(
        and(
          eq(apiTokens.ownerId, admin.id),
          eq(apiTokens.label, ENV_TOKEN_LABEL),
          ne(apiTokens.tokenHash, tokenHash),
          isNull(apiTokens.revokedAt),
        ),
      )
      .returning({ id: apiTokens.id });
    return revoked.length;
  });
  if (outcome === "foreign") throw new ConfigError("invalid configuration: AXION_ADMIN_TOKEN is already a token of another owner");
  if (outcome === "refused") log.warn("AXION_ADMIN_TOKEN is revoked or expired and stays refused: set a new value");
  else if (outcome > 0) log.info("revoked the token of the previous AXION_ADMIN_TOKEN", { revoked: outcome });
}

/** Per process: when each token's use was last written, so a burst of requests writes once. */
const usesWritten = new Map<string, number>();

/** Records a use at most once per LAST_USED_RESOLUTION_MS per token: once per process by memory, once overall by the SQL guard. */
async function noteUse(db: Database, tokenId: string, lastUsedAt: Date | null): Promise<void> {
  const now = Date.now();
  if (lastUsedAt && now - lastUsedAt.getTime() < LAST_USED_RESOLUTION_MS) return;
  const written = usesWritten.get(tokenId);
  if (written !== undefined && now - written < LAST_USED_RESOLUTION_MS) return;
  if (usesWritten.size >= 10_000) usesWritten.clear();
  usesWritten.set(tokenId, now);
  await db
    .update(apiTokens)
    .set({ lastUsedAt: sql`now()` })
    .where(
      and(
        eq(apiTokens.id, tokenId),
        or(isNull(apiTokens.lastUsedAt), lt(apiTokens.lastUsedAt, sql`now() - make_interval(secs => ${LAST_USED_RESOLUTION_MS / 1000})`)),
      ),
    )
    .catch((error) => log.warn("token last use not recorded", errorSummary(error)));
}

export async function ownerNamed(db: Database, name: string): Promise<{ id: string } | undefined> {
  const [owner] = await db.select({ id: owners.id }).from(owners).where(eq(owners.name, name));
  return owner;
}

/**
 * The owner a bearer token acts as, or undefined for an unknown, revoked or expired token.
 * Nothing is cached: every request reads the token's row (an index probe), so a revocation or
 * an expiry takes effect at once in every API process.
 */
export async function ownerForToken(db: Database, token: string): Promise<Owner | undefined> {
  const [row] = await db
    .select({
      id: owners.id,
      name: owners.name,
      tokenId: apiTokens.id,
      lastUsedAt: apiTokens.lastUsedAt,
      role: apiTokens.role,
      clusterIds: apiTokens.clusterIds,
    })
    .from(apiTokens)
    .innerJoin(owners, eq(owners.id, apiTokens.ownerId))
    .where(and(eq(apiTokens.tokenHash, hashToken(token)), live()));
  if (!row) return undefined;
  await noteUse(db, row.tokenId, row.lastUsedAt);
  const owner: Owner = { id: row.id, name: row.name, tokenId: row.tokenId, role: row.role };
  if (row.clusterIds) owner.clusterIds = row.clusterIds;
  return owner;
}

export async function revokeOwnerToken(db: Database, token: string): Promise<boolean> {
  const rows = await db
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiTokens.tokenHash, hashToken(token)), isNull(apiTokens.revokedAt)))
    .returning({ id: apiTokens.id });
  return rows.length > 0;
}

/**
 * The tokens a caller manages: an admin all of its owner's; a viewer or operator its own and
 * those it created. Any other token id is not found, like another owner's.
 */
function managedBy(owner: Owner) {
  if (owner.role === "admin") return eq(apiTokens.ownerId, owner.id);
  if (!owner.tokenId) return sql`false`;
  return and(eq(apiTokens.ownerId, owner.id), or(eq(apiTokens.id, owner.tokenId), eq(apiTokens.createdByTokenId, owner.tokenId)));
}

export async function listTokens(db: Database, owner: Owner, page: PageRequest): Promise<{ items: TokenView[]; nextPageToken: string }> {
  const rows = await db
    .select(tokenColumns)
    .from(apiTokens)
    .where(and(managedBy(owner), page.afterId ? gt(apiTokens.id, page.afterId) : undefined))
    .orderBy(asc(apiTokens.id))
    .limit(page.pageSize + 1);
  return toPage(rows, page);
}

/**
 * A token never outlives the token that made it: with a calling token that expires, a new token's
 * expiry (and any moved expiry) must be given and must not be after the caller's own. Read in the
 * transaction, so a caller whose expiry was just shortened is held to the new one.
 */
async function checkWithinCallerExpiry(tx: Transaction, owner: Owner, expireTimeMs: number | undefined): Promise<void> {
  if (!owner.tokenId) return;
  const [caller] = await tx.select({ expiresAt: apiTokens.expiresAt }).from(apiTokens).where(eq(apiTokens.id, owner.tokenId));
  const limit = caller?.expiresAt;
  if (!limit) return;
  if (expireTimeMs === undefined || expireTimeMs > limit.getTime())
    throw AppError.invalid("expire_time", `must be given and not after the calling token's expiry (${limit.toISOString()})`);
}

const MAX_TOKEN_CLUSTERS = 100;
const createSchema = z.object({
  label,
  expireTime: expireTime(true).optional(),
  role: z.enum(roles).optional(),
  clusterIds: z.array(z.string()).max(MAX_TOKEN_CLUSTERS, `must name at most ${MAX_TOKEN_CLUSTERS} clusters`).default([]),
});

/**
 * A new token's role and clusters, never more than the caller's: no role means the caller's, no
 * clusters the caller's (all of the owner's for an unlimited caller). A cluster outside the
 * caller's clusters is not found, as another owner's would be.
 */
async function boundedGrant(
  tx: Transaction,
  owner: Owner,
  asked: { role?: Role; clusterIds: string[] },
): Promise<{ role: Role; clusterIds: string[] | null }> {
  const role = asked.role ?? owner.role;
  if (!roleAtLeast(owner.role, role))
    throw new AppError("permission_denied", `must not exceed the calling token's role (${owner.role})`, { field: "role" });
  if (asked.clusterIds.length === 0) return { role, clusterIds: owner.clusterIds ? [...owner.clusterIds] : null };
  const ids = [...new Set(asked.clusterIds.map((id, i) => requireId(`cluster_ids[${i}]`, id)))];
  for (const id of ids) await requireCluster(tx, owner, id, "cluster_ids");
  return { role, clusterIds: ids };
}

export async function createToken(
  db: Database,
  owner: Owner,
  input: { label: string; expireTime?: number; role?: Role; clusterIds?: string[] },
): Promise<{ token: TokenView; bearerToken: string }> {
  const data = parseInput(createSchema, input);
  const bearerToken = generateToken();
  const token = await db.transaction(async (tx) => {
    await tx.select({ id: owners.id }).from(owners).where(eq(owners.id, owner.id)).for("update");
    await checkWithinCallerExpiry(tx, owner, data.expireTime);
    const grant = await boundedGrant(tx, owner, data);
    const [held] = await tx
      .select({ n: count() })
      .from(apiTokens)
      .where(and(eq(apiTokens.ownerId, owner.id), live()));
    if ((held?.n ?? 0) >= MAX_LIVE_TOKENS_PER_OWNER)
      throw new AppError("resource_exhausted", `token limit reached: at most ${MAX_LIVE_TOKENS_PER_OWNER} live tokens per owner`);
    const [row] = await tx
      .insert(apiTokens)
      .values({
        id: newId(),
        ownerId: owner.id,
        tokenHash: hashToken(bearerToken),
        tokenPrefix: tokenPrefix(bearerToken),
        label: data.label,
        expiresAt: data.expireTime === undefined ? undefined : new Date(data.expireTime),
        role: grant.role,
        clusterIds: grant.clusterIds,
        createdByTokenId: owner.tokenId ?? null,
      })
      .returning(tokenColumns);
    return row as TokenView;
  });
  return { token, bearerToken };
}

/** The owner's token, or NotFound: another owner's id is indistinguishable from a missing one. */
async function requireToken(db: Database, owner: Owner, id: string): Promise<TokenView & { isLive: boolean }> {
  const tokenId = requireId("id", id);
  const [row] = await db
    .select({ ...tokenColumns, isLive: sql<boolean>`${live()}` })
    .from(apiTokens)
    .where(and(eq(apiTokens.id, tokenId), managedBy(owner)));
  if (!row) throw AppError.notFound("token", tokenId);
  return row;
}

/** Revokes one of the owner's tokens (the calling one included); revoking a revoked token keeps its first revocation time. */
export async function revokeToken(db: Database, owner: Owner, id: string): Promise<TokenView> {
  const existing = await requireToken(db, owner, id);
  const [row] = await db
    .update(apiTokens)
    .set({ revokedAt: sql`coalesce(${apiTokens.revokedAt}, now())` })
    .where(and(eq(apiTokens.id, existing.id), eq(apiTokens.ownerId, owner.id)))
    .returning(tokenColumns);
  if (!row) throw AppError.notFound("token", existing.id);
  return row;
}

const expirySchema = z.object({
  expireTime: expireTime(false)
    .optional()
    .refine((v) => v !== undefined, "is required"),
});

/** True when `token` may do nothing the caller may not: its role at most the caller's, its clusters among the caller's. */
function withinCaller(token: Pick<TokenView, "role" | "clusterIds">, owner: Owner): boolean {
  if (!roleAtLeast(owner.role, token.role)) return false;
  if (!owner.clusterIds) return true;
  const mine = new Set(owner.clusterIds);
  return token.clusterIds?.every((id) => mine.has(id)) ?? false;
}

/** Moves a live token's expiry (a past time ends it now); a revoked or expired token stays ended. */
export async function setTokenExpiry(db: Database, owner: Owner, id: string, expireTimeMs: number | undefined): Promise<TokenView> {
  const existing = await requireToken(db, owner, id);
  const { expireTime: ms } = parseInput(expirySchema, { expireTime: expireTimeMs });
  if (!existing.isLive) throw new AppError("failed_precondition", `token ${existing.id} is already revoked or expired`);
  if (!withinCaller(existing, owner))
    throw new AppError("permission_denied", `token ${existing.id} has a stronger role or more clusters than the calling token`);
  const row = await db.transaction(async (tx) => {
    await checkWithinCallerExpiry(tx, owner, ms);
    const [updated] = await tx
      .update(apiTokens)
      .set({ expiresAt: new Date(ms as number) })
      .where(and(eq(apiTokens.id, existing.id), eq(apiTokens.ownerId, owner.id), live()))
      .returning(tokenColumns);
    return updated;
  });
  if (!row) throw new AppError("failed_precondition", `token ${existing.id} is already revoked or expired`);
  return row;
}
