import { createHash, randomBytes } from "node:crypto";
import { and, eq, isNull } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { newId } from "../db/ids.js";
import { apiTokens, owners } from "../db/schema.js";

export interface Owner {
  id: string;
  name: string;
}

/** Tokens are looked up by their SHA-256: a 256-bit random token needs no slow hash, and the lookup is an index probe. */
export const hashToken = (token: string): string => createHash("sha256").update(token).digest("hex");

export const generateToken = (): string => `axn_${randomBytes(32).toString("base64url")}`;

/** Creates (or finds) an owner by name and adds a token to it. Returns the token: it is shown once and never stored. */
export async function createOwnerToken(
  db: Database,
  ownerName: string,
  token = generateToken(),
  label = "",
): Promise<{ owner: Owner; token: string }> {
  return db.transaction(async (tx) => {
    await tx.insert(owners).values({ id: newId(), name: ownerName }).onConflictDoNothing({ target: owners.name });
    const [owner] = await tx.select({ id: owners.id, name: owners.name }).from(owners).where(eq(owners.name, ownerName));
    if (!owner) throw new Error(`owner ${ownerName} could not be created`);
    await tx
      .insert(apiTokens)
      .values({ id: newId(), ownerId: owner.id, tokenHash: hashToken(token), label })
      .onConflictDoNothing({ target: apiTokens.tokenHash });
    return { owner, token };
  });
}

/** The owner a bearer token acts as, or undefined for an unknown or revoked token. */
export async function ownerForToken(db: Database, token: string): Promise<Owner | undefined> {
  const [row] = await db
    .select({ id: owners.id, name: owners.name })
    .from(apiTokens)
    .innerJoin(owners, eq(owners.id, apiTokens.ownerId))
    .where(and(eq(apiTokens.tokenHash, hashToken(token)), isNull(apiTokens.revokedAt)));
  return row;
}

export async function revokeOwnerToken(db: Database, token: string): Promise<boolean> {
  const rows = await db
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiTokens.tokenHash, hashToken(token)), isNull(apiTokens.revokedAt)))
    .returning({ id: apiTokens.id });
  return rows.length > 0;
}
