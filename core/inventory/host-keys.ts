import { ApplicationFailure } from "@temporalio/common";
import { SshErrorType } from "../../activities/ssh/errors.js";
import { openSsh, presentedFingerprint } from "../../activities/ssh/session.js";
import { AppError } from "../kernel/errors.js";
import { errorSummary, log } from "../kernel/log.js";
import { runningOperation } from "../operations/operations.js";
import { credentialForLogin } from "../security/ssh-credential.js";
import type { Owner } from "./owners.js";
import { setServerStatus } from "./server-status.js";
import { type InventoryDeps, loadServerCredential, repinHostKey, requireServer, type ServerRow } from "./servers.js";

/** As `ssh-keygen -lf` prints a SHA-256 fingerprint: 32 bytes in unpadded base64. */
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

export type HostKeyDeps = Pick<InventoryDeps, "db" | "cipher" | "keyParsing" | "networkPolicy"> & { sshConnectTimeoutMs?: number };

/**
 * Every failure to reach or verify the host gets this one answer (the details go to the log):
 * otherwise the answers would tell a closed port from an open one, or one that speaks SSH.
 */
const UNVERIFIED = "could not reach or verify the host: nothing was changed (TestServerConnection tells why)";

/**
 * The owner trusts a changed host key, explicitly and only that one: one login
 * with `expected` as the pin proves the host presents exactly it (the key
 * exchange is verified, so nobody can present a key without holding it); then
 * it is pinned and a HOSTKEY_MISMATCH server is PENDING again. Any other key is
 * FailedPrecondition naming the key seen, nothing changed.
 */
export async function acceptHostKey(deps: HostKeyDeps, owner: Owner, id: string, expected: string): Promise<ServerRow> {
  const server = await requireServer(deps.db, owner, id);
  if (!FINGERPRINT.test(expected)) {
    throw AppError.invalid(
      "expected_fingerprint",
      'must be a SHA-256 fingerprint as ssh-keygen -lf prints it ("SHA256:" and 43 characters)',
    );
  }
  const running = await runningOperation(deps.db, server.id);
  if (running) {
    throw new AppError(
      "failed_precondition",
      `the host key cannot change while the ${running.kind} operation ${running.id} runs: cancel it or wait`,
    );
  }
  const usable = await credentialForLogin(await loadServerCredential(deps, server.id), { ownerId: server.ownerId, pool: deps.keyParsing });
  if (!usable.ok) throw new AppError("failed_precondition", `could not check the host key: ${usable.problem}`, { field: "credential" });
  try {
    // The same check on the resolved address as every other login; ssh2 connects to the address checked.
    const session = await openSsh({ host: server.host, port: server.sshPort, username: server.sshUser }, usable.credential, {
      pinnedFingerprint: expected,
      connectTimeoutMs: deps.sshConnectTimeoutMs,
      networkPolicy: deps.networkPolicy,
      owner: server.ownerId,
    });
    session.close();
  } catch (error) {
    const seen = presentedFingerprint(error);
    if (seen) throw new AppError("failed_precondition", `the host presents key ${seen}, not ${expected}: nothing was changed`);
    const type = error instanceof ApplicationFailure ? error.type : undefined;
    if (type === SshErrorType.RefusedByPolicy) throw new AppError("failed_precondition", (error as Error).message, { field: "host" });
    // Our own failure texts (ssh/errors.ts), never the host's words.
    const reason = type ? (error as Error).message : undefined;
    log.warn("AcceptHostKey could not reach or verify the host", {
      serverId: server.id,
      failureType: type,
      reason,
      ...errorSummary(error),
    });
    throw new AppError("unavailable", UNVERIFIED);
  }
  if (!(await repinHostKey(deps.db, server.id, server, expected))) {
    throw new AppError("failed_precondition", "the server's address changed while its host key was checked: try again");
  }
  await setServerStatus(deps.db, server.id, "PENDING", `host key ${expected} accepted by the owner: configure the server to provision it`, {
    by: "host_key_acceptance",
  });
  return requireServer(deps.db, owner, server.id);
}
