import { and, asc, count, eq, gt, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../db/client.js";
import { newId } from "../db/ids.js";
import { owners, type ServerStatus, serverCredentials, servers } from "../db/schema.js";
import { requireCluster } from "./clusters.js";
import type { CredentialsCipher } from "./credentials-cipher.js";
import { isUniqueViolation } from "./db-errors.js";
import { AppError } from "./errors.js";
import { requireId } from "./ids.js";
import type { KeyParsingPool } from "./key-parsing.js";
import { defaultNetworkPolicy, type NetworkPolicy } from "./network-policy.js";
import type { Owner } from "./owners.js";
import { type PageRequest, toPage } from "./pagination.js";
import {
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
} from "./validation.js";

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

const createSchema = z.object({
  clusterId: z.string(),
  name: resourceName,
  host,
  sshPort,
  sshUser,
  credential: sshCredential,
  labels,
  provider: providerName.optional(),
  providerServerId: providerServerId.optional(),
});

const updateSchema = z.object({
  clusterId: z.string().optional(),
  name: resourceName.optional(),
  host: host.optional(),
  sshPort: sshPort.optional(),
  sshUser: sshUser.optional(),
  credential: sshCredential.optional(),
  labels: labels.optional(),
  provider: providerName.optional(),
  providerServerId: providerServerId.optional(),
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

/** Loads and decrypts a server's credential. For activities only: the result must never leave the process. */
export async function loadServerCredential(deps: Pick<InventoryDeps, "db" | "cipher">, serverId: string): Promise<SshCredentialInput> {
  const [row] = await deps.db.select().from(serverCredentials).where(eq(serverCredentials.serverId, serverId));
  if (!row) throw AppError.notFound("credential of server", serverId);
  return JSON.parse(deps.cipher.decrypt(row.envelope, serverId)) as SshCredentialInput;
}

function conflict(error: unknown, data: { name?: string; host?: string; sshPort?: number }): unknown {
  if (!isUniqueViolation(error)) return error;
  const constraint = String((error as { cause?: { constraint_name?: string; constraint?: string } }).cause?.constraint_name ?? "");
  const message = String(error instanceof Error ? `${error.message} ${(error.cause as Error | undefined)?.message ?? ""}` : "");
  if (constraint.includes("host_port") || message.includes("host_port")) {
    return new AppError("already_exists", `a server at ${data.host}:${data.sshPort} already exists`, { field: "host" });
  }
  return new AppError("already_exists", `a server named "${data.name}" already exists`, { field: "name" });
}

export async function requireServer(db: Database, owner: Owner, id: string, field = "id"): Promise<ServerRow> {
  const serverId = requireId(field, id);
  const [row] = await db
    .select()
    .from(servers)
    .where(and(eq(servers.id, serverId), eq(servers.ownerId, owner.id)));
  if (!row) throw AppError.notFound("server", serverId);
  return row;
}

export async function createServer(deps: InventoryDeps, owner: Owner, input: CreateServerInput): Promise<ServerRow> {
  const data = parseInput(createSchema, input);
  requireAllowedHost(deps.networkPolicy ?? defaultNetworkPolicy(), data.host);
  await requireUsableCredential(data.credential, deps.keyParsing);
  const cluster = await requireCluster(deps.db, owner, data.clusterId, "cluster_id");
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
          labels: data.labels,
          provider: data.provider || null,
          providerServerId: data.providerServerId || null,
        })
        .returning();
      await tx.insert(serverCredentials).values(encryptCredential(deps.cipher, id, data.credential));
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
  await requireUsableCredential(data.credential, deps.keyParsing);
  const cluster = data.clusterId === undefined ? undefined : await requireCluster(deps.db, owner, data.clusterId, "cluster_id");
  const changes: Partial<typeof servers.$inferInsert> = { updatedAt: new Date() };
  if (cluster) changes.clusterId = cluster.id;
  if (data.name !== undefined) changes.name = data.name;
  if (data.sshUser !== undefined) changes.sshUser = data.sshUser;
  if (data.labels !== undefined) changes.labels = data.labels;
  if (data.credential) changes.authMethod = data.credential.kind;
  if (data.provider !== undefined) changes.provider = data.provider || null;
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
    return await deps.db.transaction(async (tx) => {
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
      return row;
    });
  } catch (error) {
    throw conflict(error, { name: data.name, host: changes.host, sshPort: changes.sshPort });
  }
}

export async function deleteServer(db: Database, owner: Owner, id: string): Promise<void> {
  const existing = await requireServer(db, owner, id);
  await db.delete(servers).where(and(eq(servers.id, existing.id), eq(servers.ownerId, owner.id)));
}

export async function listServers(
  db: Database,
  owner: Owner,
  page: PageRequest,
  filter: { clusterId?: string; status?: ServerStatus } = {},
): Promise<{ items: ServerRow[]; nextPageToken: string }> {
  const conditions: (SQL | undefined)[] = [eq(servers.ownerId, owner.id)];
  if (filter.clusterId) conditions.push(eq(servers.clusterId, filter.clusterId));
  if (filter.status) conditions.push(eq(servers.status, filter.status));
  if (page.afterId) conditions.push(gt(servers.id, page.afterId));
  const rows = await db
    .select()
    .from(servers)
    .where(and(...conditions))
    .orderBy(asc(servers.id))
    .limit(page.pageSize + 1);
  return toPage(rows, page);
}
