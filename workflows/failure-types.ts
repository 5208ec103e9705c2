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
  /** The address (after name resolution) is refused by the network policy (core/security/network-policy.ts). */
  RefusedByPolicy: "RefusedByPolicy",
  /**
   * The owner's share of the worker's SSH sessions stayed in use (activities/ssh/owner-shares.ts).
   * Not retried by Temporal (a retry would count as an attempt): the workflow waits and schedules
   * the step again (workflows/ssh-share.ts).
   */
  ShareBusy: "SshShareBusy",
  /** sudo refused the server's become password (or the login password used as one): retrying sends the same one. */
  SudoPasswordRefused: "SudoPasswordRefused",
  /** The login user may not run commands as root through sudo, or sudo asks a password the server has none for. */
  SudoNotAllowed: "SudoNotAllowed",
} as const;
export type SshErrorType = (typeof SshErrorType)[keyof typeof SshErrorType];

/** Failure types of steps outside the SSH layer: thrown by activities or workflows, decided on by workflows. */
export const FailureType = {
  ServerNotFound: "ServerNotFound",
  /** The stored credential cannot be read (decrypted): retrying reads the same bytes. */
  CredentialUnavailable: "CredentialUnavailable",
  /** The host lacks the disk or memory a bootstrap needs. */
  InsufficientResources: "InsufficientResources",
  /** The provider reported its rebuild task failed. */
  ProviderTaskFailed: "ProviderTaskFailed",
  /** A host answered a fact outside its bounds (activities/host-facts/): asking again gets the same answer. */
  HostAnswerInvalid: "HostAnswerInvalid",
  /** A rollout's run once its rollout ended FAILED (the failure budget, named in the message); its result in the details. */
  RolloutFailed: "RolloutFailed",
  /** A rollout's run once AbortRollout ended it (a workflow cannot cancel itself); its result in the details. */
  RolloutAborted: "RolloutAborted",
} as const;

/** The failure type of each provider error kind (activities/providers/provider.ts). */
export const ProviderErrorType = {
  auth: "ProviderAuthError",
  not_found: "ProviderNotFoundError",
  invalid: "ProviderInvalidRequestError",
  unavailable: "ProviderUnavailableError",
} as const;

/** Retrying these never helps. */
export const nonRetryableErrorTypes: string[] = [
  SshErrorType.AuthFailed,
  SshErrorType.HostKeyMismatch,
  SshErrorType.UnsupportedOs,
  SshErrorType.KeyUnusable,
  SshErrorType.RefusedByPolicy,
  SshErrorType.ShareBusy,
  SshErrorType.SudoPasswordRefused,
  SshErrorType.SudoNotAllowed,
  FailureType.InsufficientResources,
  FailureType.ServerNotFound,
  FailureType.CredentialUnavailable,
  FailureType.HostAnswerInvalid,
  ProviderErrorType.auth,
  ProviderErrorType.not_found,
  ProviderErrorType.invalid,
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
