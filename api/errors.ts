import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { AppError, type AppErrorKind } from "../core/errors.js";
import { errorSummary, log } from "../core/log.js";

const codes: Record<AppErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  resource_exhausted: Code.ResourceExhausted,
  unauthenticated: Code.Unauthenticated,
  unavailable: Code.Unavailable,
  internal: Code.Internal,
};

/** The only place domain errors become Connect codes. Anything unexpected is logged and answered without its text. */
export function toConnectError(error: unknown, procedure: string): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof AppError && error.kind !== "internal") return new ConnectError(error.message, codes[error.kind]);
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
