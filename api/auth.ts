import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, createContextValues, type Interceptor } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, createEndStreamSerialization, endStreamFlag, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { AuditWriter } from "../core/audit/writer.js";
import { type Owner, ownerForToken } from "../core/inventory/owners.js";
import { bearerToken } from "../core/kernel/bearer-token.js";
import type { Database } from "../db/client.js";
import { AgentService } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { rawApiAnswer } from "../observability/metrics.js";
import { anonymousRefusals, callerOf } from "./audit.js";
import { callerKey, ownerKey } from "./context.js";
import { toConnectError } from "./errors.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;
export type NodeHandler = (req: NodeRequest, res: NodeResponse) => void;

/** Methods whose callers are agents, authenticated by their own per-server token in the handler. */
const agentMethods: readonly DescMethod[] = [AgentService.method.register, AgentService.method.heartbeat];
const agentPaths = new Set(agentMethods.map((m) => `/${m.parent.typeName}/${m.name}`));

/** The token of a well-formed `Authorization: Bearer <token>` header; a malformed one is refused without a lookup. */
function requireBearerToken(header: string | undefined): string {
  const token = bearerToken(header);
  if (!token) throw new ConnectError("missing bearer token", Code.Unauthenticated);
  return token;
}

async function authenticate(db: Database, req: NodeRequest): Promise<Owner> {
  const owner = await ownerForToken(db, requireBearerToken(req.headers.authorization));
  if (!owner) throw new ConnectError("invalid bearer token", Code.Unauthenticated);
  return owner;
}

/**
 * Bearer-token auth, done before Connect reads (and inflates) a request body:
 * a caller without a valid owner token never costs more than its headers.
 * The owner reaches handlers through Connect's context values (`ownerKey`).
 * Agent methods pass through; their handlers check the per-server token.
 */
export function ownerAuthentication(db: Database, auditWriter: AuditWriter) {
  const owners = new WeakMap<NodeRequest, Owner>();
  const audit = anonymousRefusals(auditWriter);
  return {
    handler(next: NodeHandler): NodeHandler {
      return (req, res) => {
        if (agentPaths.has(req.url?.split("?", 1)[0] ?? "")) return next(req, res);
        authenticate(db, req).then(
          (owner) => {
            owners.set(req, owner);
            next(req, res);
          },
          (error: unknown) => {
            const refusal = toConnectError(error, "authenticate");
            void audit(req, refusal)
              .catch(() => undefined)
              .then(() => refuse(req, res, refusal));
          },
        );
      };
    },
    contextValues(req: NodeRequest): ContextValues {
      const values = createContextValues();
      const owner = owners.get(req);
      if (owner) values.set(ownerKey, owner);
      values.set(callerKey, callerOf(req));
      return values;
    },
  };
}

/** A second line: an owner-scoped method that reaches Connect without an authenticated owner is refused. */
export const requireOwnerInterceptor: Interceptor = (next) => async (req) => {
  if (!agentMethods.includes(req.method) && !req.contextValues.get(ownerKey)) {
    throw new ConnectError("missing bearer token", Code.Unauthenticated);
  }
  return next(req);
};

/**
 * Answers an error without reading the request, in the format of the request's
 * protocol: gRPC and gRPC-Web as a trailers-only response, Connect streaming as
 * an end-of-stream message, Connect unary as a JSON error with its HTTP status.
 */
function refuse(req: NodeRequest, res: NodeResponse, error: ConnectError): void {
  rawApiAnswer(req.url, error.code);
  const type = String(req.headers["content-type"] ?? "");
  if (/^application\/grpc(-web)?(\+|;|$)/i.test(type)) {
    const status = new Headers({ "content-type": type });
    setTrailerStatus(status, error);
    // gRPC over HTTP/2 needs a trailers-only answer: one HEADERS frame that ends the stream (grpc-go reads a
    // status in headers followed by an empty DATA frame as "closed the stream without sending trailers").
    if ("stream" in res && !/^application\/grpc-web/i.test(type)) {
      res.stream.respond({ ":status": 200, ...Object.fromEntries(status) }, { endStream: true });
      return;
    }
    res.writeHead(200, Object.fromEntries(status));
    res.end();
  } else if (/^application\/connect\+/i.test(type)) {
    const body = encodeEnvelope(endStreamFlag, createEndStreamSerialization({}).serialize({ metadata: new Headers(), error }));
    res.writeHead(200, { "content-type": type, "content-length": body.length });
    res.end(body);
  } else {
    const body = errorToJsonBytes(error, {});
    res.writeHead(codeToHttpStatus(error.code), { "content-type": "application/json", "content-length": body.length });
    res.end(body);
  }
}
