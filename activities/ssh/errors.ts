import { ApplicationFailure } from "@temporalio/common";
import { sshFailed } from "../../observability/metrics.js";
import { nonRetryableErrorTypes, SshErrorType } from "../../workflows/failure-types.js";

/**
 * Typed SSH failures. Each is an ApplicationFailure whose `type` workflows list in
 * `nonRetryableErrorTypes` (or not): auth, host key and unsupported OS never get
 * better by retrying; unreachable and timeouts may. Messages carry no secrets.
 */
export { SshErrorType };

export function sshFailure(type: SshErrorType, message: string, details?: Record<string, unknown>): ApplicationFailure {
  sshFailed(type);
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: nonRetryableErrorTypes.includes(type),
    details: details ? [details] : undefined,
  });
}

/** Maps an ssh2/socket error to its class; `hostKeyRefused` is set when our verifier said no. */
export function classifyConnectError(error: unknown, hostKeyRefused: boolean): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  const e = error as { level?: string; code?: string; message?: string };
  const message = e?.message ?? String(error);
  if (hostKeyRefused) return sshFailure(SshErrorType.HostKeyMismatch, "the host key differs from the pinned one; connection refused");
  if (e?.level === "client-authentication" || /authentication methods failed/i.test(message)) {
    return sshFailure(SshErrorType.AuthFailed, "SSH authentication failed");
  }
  if (e?.level === "client-timeout" || /timed out/i.test(message)) return sshFailure(SshErrorType.Timeout, "SSH connection timed out");
  const code = e?.code ?? "";
  return sshFailure(SshErrorType.Unreachable, `SSH connection failed${code ? ` (${code})` : ""}`);
}
