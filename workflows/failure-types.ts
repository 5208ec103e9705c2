/** Failure type names shared by activities (which throw them) and workflows (which decide on retries). */
export const SshErrorType = {
  AuthFailed: "SshAuthFailed",
  HostKeyMismatch: "HostKeyMismatch",
  Unreachable: "SshUnreachable",
  Timeout: "SshTimeout",
  UnsupportedOs: "UnsupportedOs",
  CommandFailed: "RemoteCommandFailed",
  /** The stored private key cannot be parsed or decrypted (in time): retrying parses the same bytes. */
  KeyUnusable: "SshKeyUnusable",
  /** The address (after name resolution) is refused by the network policy (core/network-policy.ts). */
  RefusedByPolicy: "RefusedByPolicy",
} as const;
export type SshErrorType = (typeof SshErrorType)[keyof typeof SshErrorType];

/** Retrying these never helps. */
export const nonRetryableErrorTypes = [
  SshErrorType.AuthFailed,
  SshErrorType.HostKeyMismatch,
  SshErrorType.UnsupportedOs,
  SshErrorType.KeyUnusable,
  SshErrorType.RefusedByPolicy,
  "InsufficientResources",
  "ServerNotFound",
  "CredentialUnavailable",
  "ProviderAuthError",
  "ProviderNotFoundError",
  "ProviderInvalidRequestError",
];

/** After all retries, these mean the server could not be reached: it is marked UNREACHABLE. */
export const unreachableErrorTypes: string[] = [SshErrorType.Unreachable, SshErrorType.Timeout];

/** The innermost message of an activity/child failure: the one that says what went wrong. */
export function failureMessage(error: unknown): string {
  let e = error as { message?: string; cause?: unknown } | undefined;
  while (e?.cause) e = e.cause as typeof e;
  return e?.message ?? String(error);
}

export function failureType(error: unknown): string | undefined {
  let e = error as { type?: string; cause?: unknown } | undefined;
  let type: string | undefined;
  while (e) {
    if (typeof e.type === "string") type = e.type;
    e = e.cause as typeof e;
  }
  return type;
}
