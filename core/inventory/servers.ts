import { and, asc, count, eq, gt, notInArray, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { owners, providerAccounts, serverCredentials, servers } from "../../db/schema.js";
import { isForeignKeyViolation, isUniqueViolation } from "../kernel/db-errors.js";
import { AppError } from "../kernel/errors.js";
import { requireId } from "../kernel/ids.js";
import { busyStatuses, type ProviderKind } from "../kernel/kinds.js";
import { type PageRequest, toPage } from "../kernel/pagination.js";
import {
  becomePassword,
  cleanText,
  host,
  labels,
  parseInput,
  providerName,
  providerServerId,
  requireAllowedHost,
  requireUsableCredential,
  resourceName,
  type SshCredentialInput,
  sshCredential,
  sshPort,
  sshUser,
} from "../kernel/validation.js";
import { refuseWhileOperationRuns } from "../operations/operations.js";
import type { CredentialsCipher } from "../security/credentials-cipher.js";
import type { KeyParsingPool } from "../security/key-parsing.js";
import { defaultNetworkPolicy, type NetworkPolicy } from "../security/network-policy.js";
import { requireCluster } from "./clusters.js";
import { withinClusters } from "./owner-scope.js";
import type { Owner } from "./owners.js";
import { requireProviderAccount } from "./provider-accounts.js";
import { type ServerTarget, targetConditions } from "./server-selection.js";
import { setServerStatus } from "./server-status.js";

/** A server as the API may show it: the credential lives in its own table and never leaves the activities. */
export type ServerRow = typeof servers.$inferSelect;

export interface InventoryDeps {
  db: Database;
  cipher: CredentialsCipher;
  maxServersPerOwner: number;
  /** Where private keys are parsed off the event loop; default: the process' shared pool. */
  keyParsing?: KeyParsingPool;
  /** Which server addresses may be registered; default: the built-in policy without operator lists. */
  networkPolicy?: NetworkPolicy;
}

/** Longer than any DNS name, which also bounds an IPv6 zone id. */
const serverHost = cleanText(253).pipe(host);

const createSchema = z.object({
  clusterId: z.string(),
  name: resourceName,
  host: serverHost,
  sshPort,
  sshUser,
  credential: sshCredential,
  becomePassword: becomePassword.optional(),
  labels,
  provider: providerName.optional(),
  providerServerId: providerServerId.optional(),
  providerAccountId: z.string().optional(),
});

const updateSchema = z.object({
  clusterId: z.string().optional(),
  name: resourceName.optional(),
  host: serverHost.optional(),
  sshPort: sshPort.optional(),
  sshUser: sshUser.optional(),
  credential: sshCredential.optional(),
  /** "" clears it. */
  becomePassword: becomePassword.optional(),
  labels: labels.optional(),
  provider: providerName.optional(),
  providerServerId: providerServerId.optional(),
  providerAccountId: z.string().optional(),
});

export type CreateServerInput = z.input<typeof createSchema>;
export type UpdateServerInput = z.input<typeof updateSchema>;

function credentialPlaintext(credential: SshCredentialInput): string {
  return JSON.stringify(
    credential.kind === "private_key"
      ? { kind: credential.kind, privateKey: credential.privateKey, passphrase: credential.passphrase ?? "" }
      : { kind: credential.kind, password: credential.password },
  );
}

function encryptCredential(cipher: CredentialsCipher, serverId: string, credential: SshCredentialInput) {
  // The server id is the associated data: an envelope copied onto another row does not decrypt.
  return { serverId, keyId: cipher.activeKeyId, envelope: cipher.encrypt(credentialPlaintext(credential), serverId) };
}

/** Its own associated data: the become envelope cannot be swapped with the login credential's, nor moved to another server. */
const becomeData = (serverId: string) => `${serverId}/become`;

/** Loads and decrypts a server's become (sudo) password, undefined when none is set. For activities only, as the credential. */
export async function loadBecomePassword(deps: Pick<InventoryDeps, "db" | "cipher">, serverId: string): Promise<string | undefined> {
  const [row] = await deps.db
    .select({ envelope: serverCredentials.becomeEnvelope })
    .from(serverCredentials)
    .where(eq(serverCredentials.serverId, serverId));
  return row?.envelope ? deps.cipher.decrypt(row.envelope, becomeData(serverId)) : undefined;
}

/** Loads and decrypts a server's credential. For activities only: the result must never leave the process. */
export async function loadServerCredential(deps: Pick<InventoryDeps, "db" | "cipher">, serverId: string): Promise<SshCredentialInput> {
  const [row] = await deps.db.select().from(serverCredentials).where(eq(serverCredentials.serverId, serverId));
  if (!row) throw AppError.notFound("credential of server", serverId);
  return JSON.parse(deps.cipher.decrypt(row.envelope, serverId)) as SshCredentialInput;
}

type ProviderBinding = { provider: string | null; providerAccountId: string | null };

/**
 * Which of the owner's provider accounts a server names. An account id must be
 * the owner's (NotFound otherwise); `provider` is then the account's kind.
 * `provider` alone (the API before accounts) names the owner's only account of
 * that kind, or none when the owner has none yet.
 */
async function providerBinding(db: Database, owner: Owner, provider: string, accountId: string): Promise<ProviderBinding> {
  if (accountId !== "") {
    const account = await requireProviderAccount(db, owner, accountId, "provider_account_id");
    if (provider !== "" && provider !== account.kind) {
      throw AppError.invalid("provider", `must be empty or "${account.kind}", the kind of provider_account_id`);
    }
    return { provider: account.kind, providerAccountId: account.id };
  }
  if (provider === "") return { provider: null, providerAccountId: null };
  const accounts = await db
    .select({ id: providerAccounts.id })
    .from(providerAccounts)
    .where(and(eq(providerAccounts.ownerId, owner.id), eq(providerAccounts.kind, provider as ProviderKind)))
    .limit(2);
  if (accounts.length > 1) throw AppError.invalid("provider_account_id", `is required: this owner has several ${provider} accounts`);
  return { provider, providerAccountId: accounts[0]?.id ?? null };
}

function conflict(error: unknown, data: { name?: string; host?: string; sshPort?: number; providerServerId?: string | null }): unknown {
  const constraint = String((error as { cause?: { constraint_name?: string; constraint?: string } }).cause?.constraint_name ?? "");
  const message = String(error instanceof Error ? `${error.message} ${(error.cause as Error | undefined)?.message ?? ""}` : "");
  const names = (part: string) => constraint.includes(part) || message.includes(part);
  // The account was deleted between the check and the write.
  if (isForeignKeyViolation(error) && names("provider_account")) {
    return new AppError("not_found", "provider account not found", { field: "provider_account_id" });
  }
  if (!isUniqueViolation(error)) return error;
  if (names("provider_account_id_server_id")) {
    return new AppError("already_exists", `VPS ${data.providerServerId} of this provider account is already bound to another server`, {
      field: "provider_server_id",
    });
  }
  if (names("host_port")) {
    return new AppError("already_exists", `a server at ${data.host}:${data.sshPort} already exists`, { field: "host" });
  }
  return new AppError("already_exists", `a server named "${data.name}" already exists`, { field: "name" });
}

/** A server by id alone, or undefined when it no longer exists: for workflow steps, which fail in their own terms. */
export async function findServer(db: Database, id: string): Promise<ServerRow | undefined> {
  const [row] = await db.select().from(servers).where(eq(servers.id, id));
  return row;
}

/** A server by id alone, for system actors (core/operations/operations.ts SystemActor); owners go through requireServer. */
export async function requireServerForSystem(db: Database, id: string): Promise<ServerRow> {
  const row = await findServer(db, id);
  if (!row) throw AppError.notFound("server", id);
  return row;
}

/** One page (in id order, after `afterId`) of the ids of servers neither being provisioned or rebuilt nor still PENDING. */
export async function idleProvisionedServerIds(db: Database, page: { afterId?: string; limit: number }): Promise<string[]> {
  const rows = await db
    .select({ id: servers.id })
    .from(servers)
    .where(and(notInArray(servers.status, [...busyStatuses, "PENDING"]), page.afterId ? gt(servers.id, page.afterId) : undefined))
    .orderBy(asc(servers.id))
    .limit(page.limit);
  return rows.map((r) => r.id);
}

/**
 * A server of the named owner by handle: its id (any case) or its name. Other
 * owners' servers are not found.
 */
export async function findOwnerServerByHandle(
  db: Database,
  ownerName: string,
  handle: string,
): Promise<{ id: string; ownerId: string } | undefined> {
  const ofOwner = (match: SQL) =>
    db
      .select({ id: servers.id, ownerId: servers.ownerId })
      .from(servers)
      .innerJoin(owners, eq(owners.id, servers.ownerId))
      .where(and(eq(owners.name, ownerName), match));
  const byId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(handle)
    ? await ofOwner(eq(servers.id, handle.toLowerCase()))
    : [];
  const [server] = byId.length > 0 ? byId : await ofOwner(eq(servers.name, handle));
  return server;
}

export async function requireServer(db: Database, owner: Owner, id: string, field = "id"): Promise<ServerRow> {
  const serverId = requireId(field, id);
  const [row] = await db
    .select()
    .from(servers)
    .where(and(eq(servers.id, serverId), eq(servers.ownerId, owner.id), withinClusters(owner, servers.clusterId)));
  if (!row) throw AppError.notFound("server", serverId);
  return row;
}

export async function createServer(deps: InventoryDeps, owner: Owner, input: CreateServerInput): Promise<ServerRow> {
  const data = parseInput(createSchema, input);
  requireAllowedHost(deps.networkPolicy ?? defaultNetworkPolicy(), data.host);
  await requireUsableCredential(owner.id, data.credential, deps.keyParsing);
  const cluster = await requireCluster(deps.db, owner, data.clusterId, "cluster_id");
  const binding = await providerBinding(deps.db, owner, data.provider ?? "", data.providerAccountId ?? "");
  const id = newId();
  try {
    return await deps.db.transaction(async (tx) => {
      // Serialises this owner's creates: the count below cannot be raced past the limit.
      await tx.select({ id: owners.id }).from(owners).where(eq(owners.id, owner.id)).for("update");
      const [existing] = await tx.select({ n: count() }).from(servers).where(eq(servers.ownerId, owner.id));
      if ((existing?.n ?? 0) >= deps.maxServersPerOwner) {
        throw new AppError("resource_exhausted", `server limit reached: at most ${deps.maxServersPerOwner} servers per owner`);
      }
      const [row] = await tx
        .insert(servers)
        .values({
          id,
          ownerId: owner.id,
          clusterId: cluster.id,
          name: data.name,
          host: data.host,
          sshPort: data.sshPort,
          sshUser: data.sshUser,
          authMethod: data.credential.kind,
          becomePasswordSet: Boolean(data.becomePassword),
          labels: data.labels,
          ...binding,
          providerServerId: data.providerServerId || null,
        })
        .returning();
      await tx.insert(serverCredentials).values({
        ...encryptCredential(deps.cipher, id, data.credential),
        becomeEnvelope: data.becomePassword ? deps.cipher.encrypt(data.becomePassword, becomeData(id)) : null,
      });
      return row as ServerRow;
    });
  } catch (error) {
    throw conflict(error, data);
  }
}

export async function updateServer(deps: InventoryDeps, owner: Owner, id: string, input: UpdateServerInput): Promise<ServerRow> {
  const existing = await requireServer(deps.db, owner, id);
  const data = parseInput(updateSchema, input);
  requireAllowedHost(deps.networkPolicy ?? defaultNetworkPolicy(), data.host);
  await requireUsableCredential(owner.id, data.credential, deps.keyParsing);
  const cluster = data.clusterId === undefined ? undefined : await requireCluster(deps.db, owner, data.clusterId, "cluster_id");
  const changes: Partial<typeof servers.$inferInsert> = { updatedAt: new Date() };
  if (cluster) changes.clusterId = cluster.id;
  if (data.name !== undefined) changes.name = data.name;
  if (data.sshUser !== undefined) changes.sshUser = data.sshUser;
  if (data.labels !== undefined) changes.labels = data.labels;
  if (data.credential) changes.authMethod = data.credential.kind;
  if (data.becomePassword !== undefined) changes.becomePasswordSet = data.becomePassword !== "";
  if (data.providerAccountId !== undefined || data.provider !== undefined) {
    const keepAccount = data.providerAccountId === undefined && existing.providerAccountId !== null && data.provider === existing.provider;
    if (!keepAccount) Object.assign(changes, await providerBinding(deps.db, owner, data.provider ?? "", data.providerAccountId ?? ""));
  }
  if (data.providerServerId !== undefined) changes.providerServerId = data.providerServerId || null;
  const moved =
    (data.host !== undefined && data.host !== existing.host) || (data.sshPort !== undefined && data.sshPort !== existing.sshPort);
  if (moved) {
    changes.host = data.host ?? existing.host;
    changes.sshPort = data.sshPort ?? existing.sshPort;
    // Another address may be another machine: its host key is trusted afresh on first use.
    changes.hostKeyFingerprint = null;
  }
  try {
    const updated = await deps.db.transaction(async (tx) => {
      if (
        moved ||
        data.credential ||
        data.becomePassword !== undefined ||
        (data.sshUser !== undefined && data.sshUser !== existing.sshUser)
      ) {
        await tx.select({ id: servers.id }).from(servers).where(eq(servers.id, existing.id)).for("update");
        await refuseWhileOperationRuns(tx, existing.id, "the host, port, SSH user, credential or become password");
      }
      const [row] = await tx
        .update(servers)
        .set(changes)
        .where(and(eq(servers.id, existing.id), eq(servers.ownerId, owner.id)))
        .returning();
      if (!row) throw AppError.notFound("server", existing.id);
      if (data.credential) {
        const values = encryptCredential(deps.cipher, existing.id, data.credential);
        await tx
          .insert(serverCredentials)
          .values(values)
          .onConflictDoUpdate({ target: serverCredentials.serverId, set: { ...values, updatedAt: new Date() } });
      }
      if (data.becomePassword !== undefined) {
        const becomeEnvelope = data.becomePassword === "" ? null : deps.cipher.encrypt(data.becomePassword, becomeData(existing.id));
        await tx
          .update(serverCredentials)
          .set({ becomeEnvelope, updatedAt: new Date() })
          .where(eq(serverCredentials.serverId, existing.id));
      }
      return row;
    });
    if (!moved) return updated;
    const moveReason = `address changed to ${updated.host}:${updated.sshPort}: configure the server to provision it`;
    await setServerStatus(deps.db, updated.id, "PENDING", moveReason, { by: "user" });
    return (await requireServer(deps.db, owner, updated.id)) ?? updated;
  } catch (error) {
    throw conflict(error, {
      name: data.name,
      host: changes.host,
      sshPort: changes.sshPort,
      providerServerId: changes.providerServerId ?? existing.providerServerId,
    });
  }
}

export async function deleteServer(db: Database, owner: Owner, id: string): Promise<void> {
  const existing = await requireServer(db, owner, id);
  await db.delete(servers).where(and(eq(servers.id, existing.id), eq(servers.ownerId, owner.id)));
}

/** A page of the owner's servers matching `filter` (core/inventory/server-selection.ts), in id order. */
export async function listServers(
  db: Database,
  owner: Owner,
  page: PageRequest,
  filter: ServerTarget = {},
): Promise<{ items: ServerRow[]; nextPageToken: string }> {
  const conditions = await targetConditions(db, owner, filter);
  if (page.afterId) conditions.push(gt(servers.id, page.afterId));
  const rows = await db
    .select()
    .from(servers)
    .where(and(...conditions))
    .orderBy(asc(servers.id))
    .limit(page.pageSize + 1);
  return toPage(rows, page);
}

/**
 * The owner accepted a changed host key: pins `fingerprint` if the server still
 * has the address the key was checked at, refused while an operation runs; in
 * one transaction with the row locked. False when the address changed meanwhile.
 */
export async function repinHostKey(
  db: Database,
  serverId: string,
  checkedAt: { host: string; sshPort: number },
  fingerprint: string,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .select({ host: servers.host, sshPort: servers.sshPort })
      .from(servers)
      .where(eq(servers.id, serverId))
      .for("update");
    if (!row || row.host !== checkedAt.host || row.sshPort !== checkedAt.sshPort) return false;
    await refuseWhileOperationRuns(tx, serverId, "the host key");
    await tx.update(servers).set({ hostKeyFingerprint: fingerprint, updatedAt: new Date() }).where(eq(servers.id, serverId));
    return true;
  });
}
