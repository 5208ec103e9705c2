import { createHash } from "node:crypto";
import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import { pinHostKey, setServerStatus } from "../core/inventory/server-status.js";
import { findServer, loadBecomePassword, loadServerCredential, type ServerRow } from "../core/inventory/servers.js";
import { AppError } from "../core/kernel/errors.js";
import type { SshCredentialInput } from "../core/kernel/validation.js";
import { credentialForLogin } from "../core/security/ssh-credential.js";
import { FailureType } from "../workflows/failure-types.js";
import type { ActivityDeps } from "./deps.js";
import { SshErrorType, sshFailure } from "./ssh/errors.js";
import { recordSshLogin } from "./ssh/login-audit.js";
import type { SshShares } from "./ssh/owner-shares.js";
import { heartbeating } from "./ssh/remote-step.js";
import { openSsh, presentedFingerprint, type SshSession } from "./ssh/session.js";

export type ServerRecord = ServerRow;

export async function loadServer(deps: ActivityDeps, serverId: string): Promise<ServerRecord> {
  const server = await findServer(deps.db, serverId);
  if (!server) throw ApplicationFailure.nonRetryable(`server ${serverId} no longer exists`, FailureType.ServerNotFound);
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
 * Sessions are shared only between activities of one workflow run, on one
 * server, with the same address and credential: a new workflow (a connection
 * test after a host key change, say) always logs in afresh.
 */
function sessionKey(server: ServerRecord, credential: SshCredentialInput, becomePassword: string | undefined): string | undefined {
  let run: { workflowId: string; runId: string } | undefined;
  try {
    run = Context.current().info.workflowExecution;
  } catch {
    return undefined;
  }
  if (!run) return undefined;
  const identity = createHash("sha256")
    .update(JSON.stringify([server.host, server.sshPort, server.sshUser, credential, becomePassword ?? null]))
    .digest("base64url");
  return `${run.workflowId}/${run.runId}/${server.id}/${identity}`;
}

/** Workflow steps wait their owner's turn for a key-parsing thread rather than fail into retries. */
async function usableCredential(deps: ActivityDeps, ownerId: string, credential: SshCredentialInput): Promise<SshCredentialInput> {
  const usable = await credentialForLogin(credential, { ownerId, pool: deps.keyParsing, overShare: "queue" });
  if (!usable.ok) throw sshFailure(SshErrorType.KeyUnusable, usable.problem);
  return usable.credential;
}

export interface SessionOptions {
  /**
   * "close" after a step that changes how SSH is reached (firewall, sshd
   * settings), so the next step proves with a new login that the host still
   * lets us in, and after a run's only SSH step (a connection test), so the
   * host's session ends with the answer. Default "keep": the next step of the
   * same run reuses it (an idle session is closed after the pool's 15 s).
   */
  afterwards?: "keep" | "close";
  /**
   * A plan's session: no host key pinned on first use, no status written on a
   * mismatch, never shared with another activity. The pinned key is still enforced.
   */
  readOnly?: boolean;
}

/**
 * Runs `work` in an SSH session to a server addressed by id: loads and decrypts
 * its credential here (never from workflow input), enforces the pinned host key,
 * pins it on first success, and marks the server HOSTKEY_MISMATCH when the key
 * changed. A session left by the previous step of the same workflow run is
 * reused when the host key is already pinned (trust on first use always
 * happens on a new connection). Opening and using the session counts against the
 * owner's share of this worker's SSH sessions (activities/ssh/owner-shares.ts).
 */
export async function withServerSession<T>(
  deps: ActivityDeps,
  serverId: string,
  work: (session: SshSession, server: ServerRecord) => Promise<T>,
  options: SessionOptions = {},
): Promise<T> {
  const server = await loadServer(deps, serverId);
  const unavailable = (cause: unknown) => {
    if (cause instanceof AppError) throw ApplicationFailure.nonRetryable(cause.message, FailureType.CredentialUnavailable);
    throw cause;
  };
  const credential = await loadServerCredential(deps, serverId).catch(unavailable);
  // Decrypted here, as the login credential: it never travels in workflow input or results.
  const becomePassword = await loadBecomePassword(deps, serverId).catch(unavailable);
  // The share covers what costs: decrypting the key, logging in, the session's work. Waiting for it
  // heartbeats, so a long wait is not mistaken for a lost worker.
  const release = deps.sshShares
    ? await heartbeating(() => (deps.sshShares as SshShares).acquire(server.ownerId, activitySignal()))
    : () => {};
  try {
    return await inSession(deps, server, { credential, becomePassword }, work, options);
  } finally {
    release();
  }
}

async function inSession<T>(
  deps: ActivityDeps,
  server: ServerRecord,
  { credential, becomePassword }: { credential: SshCredentialInput; becomePassword: string | undefined },
  work: (session: SshSession, server: ServerRecord) => Promise<T>,
  options: SessionOptions,
): Promise<T> {
  const serverId = server.id;
  const key = deps.sshSessions && !options.readOnly ? sessionKey(server, credential, becomePassword) : undefined;
  let session = key && server.hostKeyFingerprint ? deps.sshSessions?.take(key) : undefined;
  if (session && session.fingerprint !== server.hostKeyFingerprint) {
    session.close();
    session = undefined;
  }
  if (session) {
    session.attach(activitySignal());
  } else {
    try {
      session = await openSsh(
        { host: server.host, port: server.sshPort, username: server.sshUser },
        await usableCredential(deps, server.ownerId, credential),
        {
          pinnedFingerprint: server.hostKeyFingerprint,
          connectTimeoutMs: deps.sshConnectTimeoutMs,
          signal: activitySignal(),
          networkPolicy: deps.networkPolicy,
          owner: server.ownerId,
          becomePassword,
          serverName: server.name,
        },
      );
      await recordSshLogin(deps.db, server);
    } catch (error) {
      await recordSshLogin(deps.db, server, error);
      if (!options.readOnly && error instanceof ApplicationFailure && error.type === SshErrorType.HostKeyMismatch) {
        const reason = `the host key differs from the pinned ${server.hostKeyFingerprint}: the host presents ${presentedFingerprint(error)} (AcceptHostKey with it if the change is legitimate)`;
        await setServerStatus(deps.db, serverId, "HOSTKEY_MISMATCH", reason, { by: "host_key_check" });
      }
      throw error;
    }
  }
  let succeeded = false;
  try {
    if (!server.hostKeyFingerprint && !options.readOnly) await pinHostKey(deps.db, serverId, session.fingerprint);
    const result = await work(session, server);
    succeeded = true;
    return result;
  } finally {
    // A failed step's session is never reused: its retry starts from a new login.
    if (succeeded && key && options.afterwards !== "close" && session.isOpen()) deps.sshSessions?.give(key, session);
    else session.close();
  }
}
