import * as http from "node:http";
import * as http2 from "node:http2";
import type { Socket } from "node:net";
import type { EdgeLimits } from "./edge-limits.js";

type Timeouts = Pick<EdgeLimits, "firstByteTimeoutMs" | "headersTimeoutMs" | "requestTimeoutMs" | "idleTimeoutMs">;

/** Closes a connection that has not said which protocol it speaks in time; call the result once it has. */
export function firstByteDeadline(socket: Socket, limits: Timeouts): () => void {
  const timer = setTimeout(() => socket.destroy(), limits.firstByteTimeoutMs);
  const clear = () => clearTimeout(timer);
  socket.once("close", clear);
  return clear;
}

/**
 * An HTTP/1.1 server with header, request and keep-alive timeouts. It is handed
 * sockets by the one-port front and never listens itself, and Node starts its
 * header and request timeout checks on "listening": so it is told it listens.
 */
export function createLimitedHttp1Server(limits: Timeouts, listener: http.RequestListener): http.Server {
  const requestTimeout = limits.requestTimeoutMs;
  const headersTimeout = Math.min(limits.headersTimeoutMs, requestTimeout);
  const server = http.createServer(
    {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout: limits.idleTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
    listener,
  );
  server.emit("listening");
  return server;
}

/** Streams one HTTP/2 connection may have open at once (Node allows 2^32 - 1; gRPC servers commonly 100). */
const MAX_CONCURRENT_STREAMS = 100;

/** An HTTP/2 server whose sessions are limited as `limitHttp2Session` says. */
export function createLimitedHttp2Server(
  limits: Timeouts,
  listener: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
): http2.Http2Server {
  const server = http2.createServer({ settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS } }, listener);
  server.on("session", (session) => limitHttp2Session(session, limits));
  return server;
}

/**
 * HTTP/2 has no header or keep-alive timeouts of its own. A session with no open
 * stream for `idleTimeoutMs` is closed (GOAWAY; pings do not keep it); a request
 * stream whose request has not fully arrived in `requestTimeoutMs` is reset.
 * A stream whose request has arrived may stay open (WatchOperation) however
 * quiet it is.
 */
function limitHttp2Session(session: http2.ServerHttp2Session, limits: Timeouts): void {
  let open = 0;
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    idle = setTimeout(() => {
      if (open === 0 && !session.closed) session.close();
    }, limits.idleTimeoutMs);
  };
  armIdle();
  session.once("close", () => clearTimeout(idle));
  session.on("stream", (stream) => {
    open += 1;
    clearTimeout(idle);
    const receiving = setTimeout(() => {
      if (!stream.readableEnded && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
    }, limits.requestTimeoutMs);
    stream.once("end", () => clearTimeout(receiving));
    stream.once("close", () => {
      clearTimeout(receiving);
      open -= 1;
      if (open === 0 && !session.closed && !session.destroyed) armIdle();
    });
  });
}
