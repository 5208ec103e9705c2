import { ApplicationFailure } from "@temporalio/common";
import { SshErrorType } from "../activities/ssh/errors.js";
import { openSsh, presentedFingerprint } from "../activities/ssh/session.js";
import { AppError } from "./errors.js";
import { runningOperation } from "./operations.js";
import type { Owner } from "./owners.js";
import { setServerStatus } from "./server-status.js";
import { type InventoryDeps, loadServerCredential, repinHostKey, requireServer, type ServerRow } from "./servers.js";

/** As `ssh-keygen -lf` prints a SHA-256 fingerprint: 32 bytes in unpadded base64. */
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

export type HostKeyDeps = Pick<InventoryDeps, "db" | "cipher"> & { sshConnectTimeoutMs?: number };

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
  const credential = await loadServerCredential(deps, server.id);
  try {
    const session = await openSsh({ host: server.host, port: server.sshPort, username: server.sshUser }, credential, {
      pinnedFingerprint: expected,
      connectTimeoutMs: deps.sshConnectTimeoutMs,
    });
    session.close();
  } catch (error) {
    const seen = presentedFingerprint(error);
    if (seen) throw new AppError("failed_precondition", `the host presents key ${seen}, not ${expected}: nothing was changed`);
    const type = error instanceof ApplicationFailure ? error.type : undefined;
    const why = error instanceof Error ? error.message : String(error);
    if (type === SshErrorType.AuthFailed) throw new AppError("failed_precondition", `could not check the host key: ${why}`);
    throw new AppError("unavailable", `could not check the host key: ${why}`);
  }
  if (!(await repinHostKey(deps.db, server.id, server, expected))) {
    throw new AppError("failed_precondition", "the server's address changed while its host key was checked: try again");
  }
  await setServerStatus(deps.db, server.id, "PENDING", `host key ${expected} accepted by the owner: configure the server to provision it`, {
    by: "host_key_acceptance",
  });
  return requireServer(deps.db, owner, server.id);
}
