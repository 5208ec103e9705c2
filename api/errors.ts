import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { AppError, type AppErrorKind } from "../core/kernel/errors.js";
import { errorSummary, log } from "../core/kernel/log.js";
import { displaySafe } from "../core/kernel/text.js";

/** The most characters of an error message a caller is answered: it may quote input, never much of it. */
export const MAX_ERROR_MESSAGE = 300;

/** Every error message answered, whatever wrote it: one line, unsafe characters escaped (core/kernel/text.ts), at most MAX_ERROR_MESSAGE characters. */
export function boundedErrorMessage(message: string): string {
  const safe = displaySafe(message);
  return safe.length <= MAX_ERROR_MESSAGE ? safe : `${safe.slice(0, MAX_ERROR_MESSAGE - 1)}…`;
}

const codes: Record<AppErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  unavailable: Code.Unavailable,
  internal: Code.Internal,
};

/** The only place domain errors become Connect codes. Anything unexpected is logged and answered without its text. */
export function toConnectError(error: unknown, procedure: string): ConnectError {
  if (error instanceof ConnectError) {
    const message = boundedErrorMessage(error.rawMessage);
    return message === error.rawMessage ? error : new ConnectError(message, error.code, error.metadata, undefined, error.cause);
  }
  if (error instanceof AppError && error.kind !== "internal")
    return new ConnectError(boundedErrorMessage(error.message), codes[error.kind]);
  log.error("request failed", { procedure, ...errorSummary(error) });
  return new ConnectError("internal error", Code.Internal);
}

/** A streamed response's messages, with an error thrown while streaming mapped like a unary RPC's. */
async function* mappingErrors<T>(messages: AsyncIterable<T>, procedure: string): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (error) {
    throw toConnectError(error, procedure);
  }
}

export const errorInterceptor: Interceptor = (next) => async (req) => {
  try {
    const res = await next(req);
    return res.stream ? { ...res, message: mappingErrors(res.message, req.method.name) } : res;
  } catch (error) {
    throw toConnectError(error, req.method.name);
  }
};
