import { randomUUID } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type LogContext, log, withLogContext } from "../core/kernel/log.js";

export const REQUEST_ID_HEADER = "x-request-id";
/** What a client's or a proxy's own request id may look like to be kept (UUIDs, hex, short tokens): no spaces, quotes or control characters. */
const wellFormed = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const wellFormedRequestId = (value: string) => wellFormed.test(value);

/** Each step of a streamed response runs in the request's log context (a generator resumes in its caller's context). */
async function* inContext<T>(fields: LogContext, messages: AsyncIterable<T>, ended: (code: string) => void): AsyncIterable<T> {
  const iterator = messages[Symbol.asyncIterator]();
  let code = "ok";
  try {
    for (;;) {
      const next = await withLogContext(fields, () => iterator.next());
      if (next.done) return;
      yield next.value;
    }
  } catch (error) {
    code = codeOf(error);
    throw error;
  } finally {
    await withLogContext(fields, async () => {
      await iterator.return?.();
      ended(code);
    });
  }
}

const codeOf = (error: unknown) => (error instanceof ConnectError ? Code[error.code] : "unknown");

/**
 * A request id per RPC: the caller's `x-request-id` when well formed, else a new
 * one; on every line logged while serving the call, and echoed in the response
 * header (error responses included). Each call logs its start and end at debug.
 */
export const requestIdInterceptor: Interceptor = (next) => async (req) => {
  const incoming = req.header.get(REQUEST_ID_HEADER);
  const requestId = incoming && wellFormed.test(incoming) ? incoming : randomUUID();
  const fields = { requestId };
  const procedure = `${req.service.typeName}/${req.method.name}`;
  const started = performance.now();
  const finished = (code: string) => log.debug("rpc finished", { procedure, code, durationMs: Math.round(performance.now() - started) });
  try {
    const res = await withLogContext(fields, () => {
      log.debug("rpc started", { procedure });
      return next(req);
    });
    res.header.set(REQUEST_ID_HEADER, requestId);
    if (res.stream) return { ...res, message: inContext(fields, res.message, finished) };
    withLogContext(fields, () => finished("ok"));
    return res;
  } catch (error) {
    if (error instanceof ConnectError) error.metadata.set(REQUEST_ID_HEADER, requestId);
    withLogContext(fields, () => finished(codeOf(error)));
    throw error;
  }
};
