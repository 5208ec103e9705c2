import type { IncomingMessage, ServerResponse } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJsonBytes, parseContentType } from "@connectrpc/connect/protocol-connect";
import { parseHeartbeatJson } from "../core/agents/heartbeat-intake.js";
import { rawApiAnswer } from "../observability/metrics.js";
import { type AgentServiceDeps, acceptHeartbeat } from "./agent-service.js";
import { toConnectError } from "./errors.js";

export const HEARTBEAT_PATH = "/axion.infrastructure.v1.AgentService/Heartbeat";
const MAX_BODY_BYTES = 64 * 1024;
const EMPTY_RESPONSE = Buffer.from("{}");

/**
 * Every agent calls Heartbeat every few seconds, so at fleet scale it is most
 * of the API's traffic. The Connect router spends most of a heartbeat's CPU on
 * per-request machinery (abort signals, async body iterables, interceptors).
 * This answers the one shape agents send (Connect unary, JSON, uncompressed,
 * HTTP/1.1) with the same parsing, checks and error format; any other shape
 * (binary, compressed, gRPC, HTTP/2) is left to the router.
 */
export function heartbeatFastPath(deps: AgentServiceDeps) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== "POST" || req.url !== HEARTBEAT_PATH || req.httpVersionMajor !== 1) return false;
    const type = parseContentType(req.headers["content-type"] ?? null);
    if (!type || type.stream || type.binary) return false;
    const encoding = req.headers["content-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;

    const startedAt = process.hrtime.bigint();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => {
      const answer = async () => {
        if (size > MAX_BODY_BYTES) throw new ConnectError(`message is larger than ${MAX_BODY_BYTES} bytes`, Code.ResourceExhausted);
        await acceptHeartbeat(deps, req.headers.authorization ?? null, parseHeartbeatJson(Buffer.concat(chunks).toString("utf8")));
      };
      answer().then(
        () => {
          rawApiAnswer(HEARTBEAT_PATH, undefined, startedAt);
          res.writeHead(200, { "content-type": "application/json", "content-length": EMPTY_RESPONSE.length });
          res.end(EMPTY_RESPONSE);
        },
        (error: unknown) => {
          const connectError = toConnectError(error, "Heartbeat");
          rawApiAnswer(HEARTBEAT_PATH, connectError.code, startedAt);
          const body = errorToJsonBytes(connectError, undefined);
          res.writeHead(codeToHttpStatus(connectError.code), { "content-type": "application/json", "content-length": body.length });
          res.end(body);
        },
      );
    });
    return true;
  };
}
