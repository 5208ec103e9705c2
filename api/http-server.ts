import * as http from "node:http";
import * as http2 from "node:http2";
import { type AddressInfo, createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Database } from "../db/client.js";
import { authInterceptor } from "./auth.js";
import { errorInterceptor } from "./errors.js";
import { type ApiDeps, routes } from "./routes.js";

type NodeHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

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

export interface ApiServer {
  /** Resolves with the bound port. */
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Connect, gRPC and gRPC-Web on one plain-text port. gRPC needs HTTP/2 (h2c with
 * prior knowledge), curl and browsers speak HTTP/1.1: the first bytes of each
 * connection say which, and the socket is handed to the matching server.
 */
export function buildApiServer(deps: ApiDeps): ApiServer {
  const connect = connectNodeAdapter({
    routes: routes(deps),
    interceptors: [errorInterceptor, authInterceptor(deps.db)],
  }) as NodeHandler;
  const health = healthHandler(deps.db);
  const handler: NodeHandler = (req, res) => {
    if (req.url === "/healthz" && req.method === "GET") return health(req, res);
    connect(req, res);
  };
  const h1 = http.createServer(handler as http.RequestListener);
  const h2 = http2.createServer(handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  const sockets = new Set<Socket>();

  const front: NetServer = createNetServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const prefix = head.subarray(0, HTTP2_PREFACE.length);
      if (head.length < HTTP2_PREFACE.length && HTTP2_PREFACE.subarray(0, head.length).equals(head)) return;
      socket.off("data", onData);
      socket.pause();
      socket.unshift(head);
      (prefix.equals(HTTP2_PREFACE) ? h2 : h1).emit("connection", socket);
      socket.resume();
    };
    socket.on("data", onData);
  });

  return {
    listen(port, host = "0.0.0.0") {
      return new Promise((resolve, reject) => {
        front.once("error", reject);
        front.listen(port, host, () => resolve((front.address() as AddressInfo).port));
      });
    },
    async close() {
      await new Promise<void>((resolve) => {
        front.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      h1.close();
      h2.close();
    },
  };
}
