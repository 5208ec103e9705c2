import { ProviderErrorType } from "../../workflows/failure-types.js";

/**
 * What the reinstall workflow needs from a VPS provider. Every method is one API call: no
 * loops, no sleeps. The workflow polls `getTask` between durable timers.
 */

export interface ReinstallRequest {
  /** An OS code from `listOperatingSystems`. */
  os: string;
  /** A public key to authorize for root on the new system. */
  sshKey?: string;
  /** The provider's id of a saved init script (Time4VPS: digits), not a script body. */
  script?: string;
}

export type ProviderTaskState = "pending" | "running" | "succeeded" | "failed";

export interface VpsProvider {
  readonly name: string;
  /** OS codes accepted by `reinstall` for this server. */
  listOperatingSystems(serverRef: string): Promise<string[]>;
  /** `addresses`: every IP address the provider assigns to the server (the main one first). */
  getServer(serverRef: string): Promise<{ id: string; status: string; ip?: string; addresses: string[]; os?: string }>;
  /** Starts the rebuild and returns at once; the provider runs it as a task. */
  reinstall(serverRef: string, request: ReinstallRequest): Promise<{ taskId: string }>;
  /** `detail` is safe to store and show: secrets in the provider's text are redacted. */
  getTask(serverRef: string, taskId: string): Promise<{ state: ProviderTaskState; detail: string }>;
}

/** The error type of each kind, as Temporal sees it (ApplicationFailure `type`): defined in the workflow contract. */
export { ProviderErrorType };
export type ProviderErrorKind = keyof typeof ProviderErrorType;

/** For `nonRetryableErrorTypes`: credentials, missing servers and rejected requests do not get better by retrying. */
export const nonRetryableProviderErrors: string[] = [ProviderErrorType.auth, ProviderErrorType.not_found, ProviderErrorType.invalid];

/**
 * A failed provider call. Messages never carry credentials or keys.
 *
 * Temporal names an activity failure after `error.constructor.name` (not `error.name`), so each
 * kind has its own subclass, and `new ProviderError(message, kind)` yields that subclass.
 */
export class ProviderError extends Error {
  /** The HTTP status, when the provider answered. */
  readonly status?: number;

  constructor(
    message: string,
    readonly kind: ProviderErrorKind,
    options: { cause?: unknown; status?: number } = {},
  ) {
    super(message, { cause: options.cause });
    if (new.target === ProviderError) Object.setPrototypeOf(this, subclassOf[kind].prototype);
    this.name = ProviderErrorType[kind];
    this.status = options.status;
  }

  get retryable(): boolean {
    return this.kind === "unavailable";
  }
}

type ErrorOptions = { cause?: unknown; status?: number };

export class ProviderAuthError extends ProviderError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, "auth", options);
  }
}

export class ProviderNotFoundError extends ProviderError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, "not_found", options);
  }
}

export class ProviderInvalidRequestError extends ProviderError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, "invalid", options);
  }
}

export class ProviderUnavailableError extends ProviderError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, "unavailable", options);
  }
}

const subclassOf: Record<ProviderErrorKind, { prototype: ProviderError }> = {
  auth: ProviderAuthError,
  not_found: ProviderNotFoundError,
  invalid: ProviderInvalidRequestError,
  unavailable: ProviderUnavailableError,
};
