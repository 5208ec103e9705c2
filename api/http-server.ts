import { randomUUID } from "node:crypto";
import * as http from "node:http";
import type * as http2 from "node:http2";
import { type AddressInfo, createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { hostname } from "node:os";
import { Duplex } from "node:stream";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createAgentTokenVerifier } from "../core/agents/agent-tokens.js";
import { type HeartbeatIngestor, startHeartbeatIngestor } from "../core/agents/heartbeat-ingest.js";
import { startAuditWriter } from "../core/audit/writer.js";
import type { Database } from "../db/client.js";
import { type MetricsAccess, metricsHandler, metricsInterceptor } from "../observability/metrics.js";
import { createReadiness, type Readiness, readinessHandler } from "../observability/readiness.js";
import { rpcTracingInterceptor } from "../observability/tracing.js";
import type { AgentServiceDeps } from "./agent-service.js";
import { auditInterceptor } from "./audit.js";
import { type NodeHandler, ownerAuthentication, requireOwnerInterceptor } from "./auth.js";
import { authorizationInterceptor } from "./authorization.js";
import { createLimitedHttp1Server, createLimitedHttp2Server, firstByteDeadline } from "./connection-limits.js";
import { consoleHandler } from "./console-static.js";
import { RESTARTING_MESSAGE } from "./drain.js";
import { defaultEdgeLimits, type EdgeLimits } from "./edge-limits.js";
import { errorInterceptor } from "./errors.js";
import { exactInputInterceptor } from "./exact-input.js";
import { heartbeatFastPath } from "./heartbeat-fast-path.js";
import { createOwnerBudgets, ownerLimitsInterceptor } from "./owner-limits.js";
import { requestIdInterceptor } from "./request-id.js";
import { type ApiDeps, routes } from "./routes.js";

function healthHandler(db: Database): NodeHandler {
  return (_req, res) => {
    db.execute("select 1")
      .then(() => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"status":"ok"}');
      })
      .catch(() => {
        res.writeHead(503, { "content-type": "application/json" });
        res.end('{"status":"database unavailable"}');
      });
  };
}

/**
 * The HTTP/2 session reads the socket's native handle directly, past anything
 * unshifted in JavaScript; a JS duplex that first replays the sniffed bytes
 * makes Node wrap it and read through JavaScript instead.
 */
function replaying(head: Buffer, socket: Socket): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk, encoding, callback) {
      socket.write(chunk, encoding, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  duplex.push(head);
  socket.on("data", (chunk) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on("end", () => duplex.push(null));
  socket.on("error", (error) => duplex.destroy(error));
  socket.on("close", () => duplex.destroy());
  return duplex;
}

export interface ApiServer {
  /** Heartbeat batching shared with other intake paths (the Kafka heartbeat topic). */
  readonly ingestor: HeartbeatIngestor;
  /** Resolves with the bound port. */
  listen(port: number, host?: string): Promise<number>;
  /**
   * Drains, then stops: /readyz answers 503 and the listener closes; streams end with Unavailable;
   * HTTP/2 sessions get GOAWAY and new HTTP/1.1 requests 503; calls in flight have `graceMs` to finish.
   */
  close(graceMs?: number): Promise<void>;
}

/** A request that arrives on an open connection while the API drains: Unavailable, so the client retries elsewhere. */
function refuseWhileDraining(res: http.ServerResponse | http2.Http2ServerResponse): void {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (res instanceof http.ServerResponse) headers.connection = "close"; // HTTP/2 forbids the header
  (res as http.ServerResponse).writeHead(503, headers);
  res.end(JSON.stringify({ code: "unavailable", message: RESTARTING_MESSAGE }));
}

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Connect, gRPC and gRPC-Web on one plain-text port. gRPC needs HTTP/2 (h2c with
 * prior knowledge), curl and browsers speak HTTP/1.1: the first bytes of each
 * connection say which, and the socket is handed to the matching server.
 */
export function buildApiServer(
  deps: ApiDeps,
  edgeLimits: Partial<EdgeLimits> = {},
  metricsAccess: MetricsAccess = {},
  readiness: Readiness = createReadiness({ db: deps.db }),
): ApiServer {
  const limits: EdgeLimits = { ...defaultEdgeLimits, ...edgeLimits };
  const draining = new AbortController();
  // One set of per-owner budgets: the interceptor charges a call, handlers charge what only they can count.
  const budgets = createOwnerBudgets(limits);
  const ingestor =
    deps.ingestor ?? startHeartbeatIngestor(deps.db, { instanceId: `api-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}` });
  const agents: AgentServiceDeps = {
    db: deps.db,
    workflows: deps.workflows,
    heartbeatIntervalSeconds: deps.heartbeatIntervalSeconds ?? 10,
    agentCallsPerInterval: deps.agentCallsPerInterval,
    metricTiers: deps.metricTiers,
    ingestor,
    verifyAgentToken: createAgentTokenVerifier(deps.db, deps.listen),
  };
  const auditWriter = startAuditWriter(deps.db);
  const auth = ownerAuthentication(deps.db, auditWriter);
  const connect = auth.handler(
    connectNodeAdapter({
      routes: routes(
        { ...deps, budgets, rolloutQueriesPerOwner: limits.rolloutQueriesPerOwner, draining: draining.signal, auditWriter },
        agents,
        limits.maxRequestBytes,
      ),
      readMaxBytes: limits.maxRequestBytes,
      // Unknown JSON keys and enum names are refused (connect-es ignores them by default); api/exact-input.ts does the rest.
      jsonOptions: { ignoreUnknownFields: false },
      contextValues: auth.contextValues,
      interceptors: [
        requestIdInterceptor,
        rpcTracingInterceptor,
        metricsInterceptor,
        ...(deps.audit === false ? [] : [auditInterceptor(deps.db, auditWriter)]),
        errorInterceptor,
        // The role check before the input is looked at: a call above the token's role is refused whatever it carries.
        authorizationInterceptor,
        exactInputInterceptor,
        requireOwnerInterceptor,
        ownerLimitsInterceptor(limits, budgets),
      ],
    }) as NodeHandler,
  );
  const heartbeat = heartbeatFastPath(agents);
  const health = healthHandler(deps.db);
  const ready = readinessHandler(readiness);
  const metrics = metricsHandler(metricsAccess);
  let inFlight = 0;
  let settled: (() => void) | undefined;
  const consolePages = deps.consoleDir ? consoleHandler(deps.consoleDir) : undefined;
  const handler: NodeHandler = (req, res) => {
    // HEAD is GET without the body (Node drops it): health checks that send HEAD get GET's status.
    const read = req.method === "GET" || req.method === "HEAD";
    if (req.url === "/healthz" && read) return health(req, res);
    if (req.url === "/readyz" && read) return ready(req, res);
    if (req.url === "/metrics" && read) return metrics(req, res);
    if (draining.signal.aborted) return refuseWhileDraining(res);
    inFlight += 1;
    res.once("close", () => {
      inFlight -= 1;
      if (inFlight === 0) settled?.();
    });
    if (req instanceof http.IncomingMessage && heartbeat(req, res as http.ServerResponse)) return;
    if (consolePages?.(req, res)) return;
    connect(req, res);
  };
  // Keep-alive (the idle timeout) longer than clients' and load balancers', so a reused connection is not closed under a request.
  const h1 = createLimitedHttp1Server(limits, handler as http.RequestListener);
  const h2 = createLimitedHttp2Server(limits, handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  const sockets = new Set<Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  const front: NetServer = createNetServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    const sniffed = firstByteDeadline(socket, limits);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const prefix = head.subarray(0, HTTP2_PREFACE.length);
      if (head.length < HTTP2_PREFACE.length && HTTP2_PREFACE.subarray(0, head.length).equals(head)) return;
      socket.off("data", onData);
      sniffed();
      socket.pause();
      if (prefix.equals(HTTP2_PREFACE)) {
        h2.emit("connection", replaying(head, socket));
      } else {
        socket.unshift(head);
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  });

  return {
    ingestor,
    listen(port, host = "0.0.0.0") {
      return new Promise((resolve, reject) => {
        front.once("error", reject);
        front.listen(port, host, () => resolve((front.address() as AddressInfo).port));
      });
    },
    async close(graceMs = 0) {
      readiness.drain();
      draining.abort();
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      for (const session of sessions) session.close();
      h1.closeIdleConnections();
      if (inFlight > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => {
            settled = resolve;
          }),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, graceMs);
          }),
        ]);
        clearTimeout(timer);
      }
      for (const socket of sockets) socket.destroy();
      await closed;
      h1.close();
      h2.close();
      await auditWriter.drained();
      await ingestor.stop();
    },
  };
}
