import { and, asc, count, eq, gt, inArray, isNull } from "drizzle-orm";
import { z } from "zod";
import type { VpsProvider } from "../../activities/providers/provider.js";
import { connectProvider, type ProviderCredentials, type ProviderEndpoints } from "../../activities/providers/registry.js";
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { owners, providerAccounts, servers } from "../../db/schema.js";
import { isForeignKeyViolation, isUniqueViolation } from "../kernel/db-errors.js";
import { AppError } from "../kernel/errors.js";
import { requireId } from "../kernel/ids.js";
import { providerKinds } from "../kernel/kinds.js";
import { log } from "../kernel/log.js";
import { type PageRequest, toPage } from "../kernel/pagination.js";
import { hasUnsafeCharacters } from "../kernel/text.js";
import { parseInput, resourceName } from "../kernel/validation.js";
import type { CredentialsCipher } from "../security/credentials-cipher.js";
import type { Owner } from "./owners.js";

/** An account as the API may show it: the envelope column is dropped before anything leaves this module. */
export type ProviderAccountView = Omit<typeof providerAccounts.$inferSelect, "envelope" | "keyId"> & { serverCount: number };
export type ProviderAccountRow = typeof providerAccounts.$inferSelect;

export interface ProviderAccountDeps {
  db: Database;
  cipher: CredentialsCipher;
}

/** The account TIME4VPS_USERNAME/TIME4VPS_PASSWORD become, owned by the admin owner. */
export const ENV_ACCOUNT_NAME = "time4vps-env";
export const ADMIN_OWNER_NAME = "admin";

const credentials = z.object({
  // HTTP basic auth cannot carry a ':' in the user name (RFC 7617).
  username: z
    .string()
    .min(1, "must not be empty")
    .max(254, "must be at most 254 characters")
    .refine((v) => !hasUnsafeCharacters(v) && !v.includes(":"), "must not contain ':' or control characters"),
  password: z
    .string()
    .min(1, "must not be empty")
    .max(1024, "must be at most 1024 characters")
    .refine((v) => !hasUnsafeCharacters(v), "must not contain control characters"),
});

const createSchema = z.object({
  name: resourceName,
  kind: z.enum(providerKinds, { error: "must be a known provider kind: PROVIDER_KIND_TIME4VPS" }),
  credentials,
});
const updateSchema = z.object({ name: resourceName.optional(), credentials: credentials.optional() });

function encrypt(cipher: CredentialsCipher, accountId: string, value: ProviderCredentials) {
  // The account id is the associated data: an envelope copied onto another row does not decrypt.
  return {
    keyId: cipher.activeKeyId,
    envelope: cipher.encrypt(JSON.stringify({ username: value.username, password: value.password }), accountId),
  };
}

function view(row: ProviderAccountRow, serverCount: number): ProviderAccountView {
  const { envelope: _envelope, keyId: _keyId, ...rest } = row;
  return { ...rest, serverCount };
}

async function withServerCounts(db: Database, rows: ProviderAccountRow[]): Promise<ProviderAccountView[]> {
  if (rows.length === 0) return [];
  const counts = await db
    .select({ accountId: servers.providerAccountId, n: count() })
    .from(servers)
    .where(
      inArray(
        servers.providerAccountId,
        rows.map((r) => r.id),
      ),
    )
    .groupBy(servers.providerAccountId);
  const byAccount = new Map(counts.map((c) => [c.accountId, c.n]));
  return rows.map((r) => view(r, byAccount.get(r.id) ?? 0));
}

const duplicateName = (name: string) =>
  new AppError("already_exists", `a provider account named "${name}" already exists`, { field: "name" });

/** The owner's account, or NotFound: another owner's id is indistinguishable from a missing one. */
export async function requireProviderAccount(db: Database, owner: Owner, id: string, field = "id"): Promise<ProviderAccountRow> {
  const accountId = requireId(field, id);
  const [row] = await db
    .select()
    .from(providerAccounts)
    .where(and(eq(providerAccounts.id, accountId), eq(providerAccounts.ownerId, owner.id)));
  if (!row) throw AppError.notFound("provider account", accountId);
  return row;
}

export async function createProviderAccount(
  deps: ProviderAccountDeps,
  owner: Owner,
  input: { name: string; kind: string | undefined; credentials: ProviderCredentials },
): Promise<ProviderAccountView> {
  const data = parseInput(createSchema, input);
  const id = newId();
  try {
    const [row] = await deps.db
      .insert(providerAccounts)
      .values({ id, ownerId: owner.id, name: data.name, kind: data.kind, ...encrypt(deps.cipher, id, data.credentials) })
      .returning();
    return view(row as ProviderAccountRow, 0);
  } catch (error) {
    if (isUniqueViolation(error)) throw duplicateName(data.name);
    throw error;
  }
}

export async function updateProviderAccount(
  deps: ProviderAccountDeps,
  owner: Owner,
  id: string,
  input: { name?: string; credentials?: ProviderCredentials },
): Promise<ProviderAccountView> {
  const existing = await requireProviderAccount(deps.db, owner, id);
  const data = parseInput(updateSchema, input);
  const changes: Partial<typeof providerAccounts.$inferInsert> = { updatedAt: new Date() };
  if (data.name !== undefined) changes.name = data.name;
  if (data.credentials) Object.assign(changes, encrypt(deps.cipher, existing.id, data.credentials));
  try {
    const [row] = await deps.db
      .update(providerAccounts)
      .set(changes)
      .where(and(eq(providerAccounts.id, existing.id), eq(providerAccounts.ownerId, owner.id)))
      .returning();
    if (!row) throw AppError.notFound("provider account", existing.id);
    const [result] = await withServerCounts(deps.db, [row]);
    return result as ProviderAccountView;
  } catch (error) {
    if (isUniqueViolation(error)) throw duplicateName(data.name ?? "");
    throw error;
  }
}

export async function deleteProviderAccount(db: Database, owner: Owner, id: string): Promise<void> {
  const existing = await requireProviderAccount(db, owner, id);
  const [users] = await db.select({ n: count() }).from(servers).where(eq(servers.providerAccountId, existing.id));
  const refuse = (n: number) =>
    new AppError("failed_precondition", `provider account ${existing.id} is named by ${n} server(s); unbind or delete them first`);
  if (users && users.n > 0) throw refuse(users.n);
  try {
    await db.delete(providerAccounts).where(and(eq(providerAccounts.id, existing.id), eq(providerAccounts.ownerId, owner.id)));
  } catch (error) {
    // A server bound between the count and the delete: the foreign key keeps the account.
    if (isForeignKeyViolation(error)) throw refuse(1);
    throw error;
  }
}

export async function getProviderAccount(db: Database, owner: Owner, id: string): Promise<ProviderAccountView> {
  const [result] = await withServerCounts(db, [await requireProviderAccount(db, owner, id)]);
  return result as ProviderAccountView;
}

export async function listProviderAccounts(db: Database, owner: Owner, page: PageRequest) {
  const rows = await db
    .select()
    .from(providerAccounts)
    .where(and(eq(providerAccounts.ownerId, owner.id), page.afterId ? gt(providerAccounts.id, page.afterId) : undefined))
    .orderBy(asc(providerAccounts.id))
    .limit(page.pageSize + 1);
  const { items, nextPageToken } = toPage(rows, page);
  return { items: await withServerCounts(db, items), nextPageToken };
}

/**
 * A provider client for an account of this owner, with credentials decrypted
 * here. For the reinstall checks and activities only: neither the client nor
 * the credentials may leave the process.
 */
export async function providerClientFor(
  deps: ProviderAccountDeps & { providers?: ProviderEndpoints },
  ownerId: string,
  accountId: string,
): Promise<{ provider: VpsProvider; account: ProviderAccountRow }> {
  const [account] = await deps.db
    .select()
    .from(providerAccounts)
    .where(and(eq(providerAccounts.id, accountId), eq(providerAccounts.ownerId, ownerId)));
  if (!account) throw new AppError("failed_precondition", `the server's provider account ${accountId} no longer exists`);
  if (!deps.providers) throw new AppError("unavailable", "VPS providers are not configured on this instance");
  const secret = JSON.parse(deps.cipher.decrypt(account.envelope, account.id)) as ProviderCredentials;
  return { provider: connectProvider(deps.providers, account.kind, secret), account };
}

/**
 * TIME4VPS_USERNAME/TIME4VPS_PASSWORD as the admin owner's account "time4vps-env",
 * created or brought up to date at every start. No other owner can name it (the
 * servers' foreign key includes the owner). Without an admin owner it is not created.
 */
export async function syncEnvProviderAccount(deps: ProviderAccountDeps, value: ProviderCredentials): Promise<string | undefined> {
  const [admin] = await deps.db.select({ id: owners.id }).from(owners).where(eq(owners.name, ADMIN_OWNER_NAME));
  if (!admin) {
    log.warn("TIME4VPS_USERNAME/TIME4VPS_PASSWORD are set but there is no admin owner (AXION_ADMIN_TOKEN): the account is not created");
    return undefined;
  }
  const data = parseInput(credentials, value);
  // Insert-if-missing, then seal with the row's id: API and worker processes may start at once.
  const fresh = newId();
  await deps.db
    .insert(providerAccounts)
    .values({ id: fresh, ownerId: admin.id, name: ENV_ACCOUNT_NAME, kind: "time4vps", ...encrypt(deps.cipher, fresh, data) })
    .onConflictDoNothing({ target: [providerAccounts.ownerId, providerAccounts.name] });
  const [row] = await deps.db
    .select({ id: providerAccounts.id })
    .from(providerAccounts)
    .where(and(eq(providerAccounts.ownerId, admin.id), eq(providerAccounts.name, ENV_ACCOUNT_NAME)));
  if (!row) throw new Error("the TIME4VPS_* provider account could not be created");
  const id = row.id;
  if (id !== fresh) {
    await deps.db
      .update(providerAccounts)
      .set({ ...encrypt(deps.cipher, id, data), updatedAt: new Date() })
      .where(eq(providerAccounts.id, id));
  }
  // Servers the admin registered before accounts existed ("provider": "time4vps" alone) now name this account.
  try {
    await deps.db
      .update(servers)
      .set({ providerAccountId: id })
      .where(and(eq(servers.ownerId, admin.id), eq(servers.provider, "time4vps"), isNull(servers.providerAccountId)));
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    log.warn("admin servers without a provider account share a provider_server_id: bind them by hand", { accountId: id });
  }
  log.info("provider account from TIME4VPS_* is up to date", { accountId: id, owner: ADMIN_OWNER_NAME });
  return id;
}
