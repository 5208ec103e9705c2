import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import { eq } from "drizzle-orm";
import { AppError } from "../core/errors.js";
import { pinHostKey, setServerStatus } from "../core/server-status.js";
import { loadServerCredential } from "../core/servers.js";
import { servers } from "../db/schema.js";
import type { ActivityDeps } from "./deps.js";
import { SshErrorType } from "./ssh/errors.js";
import { openSsh, type SshSession } from "./ssh/session.js";

export type ServerRecord = typeof servers.$inferSelect;

export async function loadServer(deps: ActivityDeps, serverId: string): Promise<ServerRecord> {
  const [server] = await deps.db.select().from(servers).where(eq(servers.id, serverId));
  if (!server) throw ApplicationFailure.nonRetryable(`server ${serverId} no longer exists`, "ServerNotFound");
  return server;
}

/** In an activity: its cancellation signal, so a cancelled workflow stops the remote I/O. */
function activitySignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

/**
 * Opens an SSH session to a server by id: loads and decrypts its credential here
 * (never from workflow input), enforces the pinned host key, pins it on first
 * success, and marks the server HOSTKEY_MISMATCH when the key changed.
 */
export async function withServerSession<T>(
  deps: ActivityDeps,
  serverId: string,
  work: (session: SshSession, server: ServerRecord) => Promise<T>,
): Promise<T> {
  const server = await loadServer(deps, serverId);
  const credential = await loadServerCredential(deps, serverId).catch((cause) => {
    if (cause instanceof AppError) throw ApplicationFailure.nonRetryable(cause.message, "CredentialUnavailable");
    throw cause;
  });
  let session: SshSession;
  try {
    session = await openSsh({ host: server.host, port: server.sshPort, username: server.sshUser }, credential, {
      pinnedFingerprint: server.hostKeyFingerprint,
      connectTimeoutMs: deps.sshConnectTimeoutMs,
      signal: activitySignal(),
    });
  } catch (error) {
    if (error instanceof ApplicationFailure && error.type === SshErrorType.HostKeyMismatch) {
      await setServerStatus(deps.db, serverId, "HOSTKEY_MISMATCH", `host key differs from the pinned ${server.hostKeyFingerprint}`);
    }
    throw error;
  }
  try {
    if (!server.hostKeyFingerprint) await pinHostKey(deps.db, serverId, session.fingerprint);
    return await work(session, server);
  } finally {
    session.close();
  }
}

/** Heartbeats every few seconds while `work` runs, so a dead worker is noticed within the heartbeat timeout. */
export async function heartbeating<T>(work: () => Promise<T>, detail?: unknown): Promise<T> {
  let context: Context | undefined;
  try {
    context = Context.current();
  } catch {
    return work();
  }
  context.heartbeat(detail);
  const timer = setInterval(() => context?.heartbeat(detail), 3000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
