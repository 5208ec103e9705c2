/** Failure type names shared by activities (which throw them) and workflows (which decide on retries). */
export const SshErrorType = {
  AuthFailed: "SshAuthFailed",
  HostKeyMismatch: "HostKeyMismatch",
  Unreachable: "SshUnreachable",
  Timeout: "SshTimeout",
  UnsupportedOs: "UnsupportedOs",
  CommandFailed: "RemoteCommandFailed",
} as const;
export type SshErrorType = (typeof SshErrorType)[keyof typeof SshErrorType];

/** Retrying these never helps. */
export const nonRetryableErrorTypes = [
  SshErrorType.AuthFailed,
  SshErrorType.HostKeyMismatch,
  SshErrorType.UnsupportedOs,
  "InsufficientResources",
  "ServerNotFound",
  "CredentialUnavailable",
  "ProviderAuthError",
  "ProviderNotFoundError",
  "ProviderInvalidRequestError",
];

/** After all retries, these mean the server could not be reached: it is marked UNREACHABLE. */
export const unreachableErrorTypes: string[] = [SshErrorType.Unreachable, SshErrorType.Timeout];
