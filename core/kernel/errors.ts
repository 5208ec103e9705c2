/**
 * The one error type of the domain. Layers below the API throw it; the API edge
 * (api/errors.ts) turns `kind` into a Connect code. `message` is safe to show to
 * a client; `cause` carries the underlying error for logs only.
 */
export type AppErrorKind =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "resource_exhausted"
  | "unauthenticated"
  | "permission_denied"
  | "unavailable"
  | "internal";

export class AppError extends Error {
  readonly kind: AppErrorKind;
  /** The request field at fault, in proto (snake_case) naming, when there is one. */
  readonly field?: string;

  constructor(kind: AppErrorKind, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(options.field ? `${options.field}: ${message}` : message, { cause: options.cause });
    this.name = "AppError";
    this.kind = kind;
    this.field = options.field;
  }

  static invalid(field: string, message: string): AppError {
    return new AppError("invalid_argument", message, { field });
  }

  static notFound(what: string, id: string): AppError {
    return new AppError("not_found", `${what} ${id} not found`);
  }
}
