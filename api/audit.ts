import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { isSpanContextValid, trace } from "@opentelemetry/api";
import { ownerOfServer } from "../core/audit/actors.js";
import type { AuditRecord } from "../core/audit/record.js";
import type { AuditWriter } from "../core/audit/writer.js";
import type { AuditOutcome } from "../core/kernel/kinds.js";
import { currentLogContext, errorSummary, log } from "../core/kernel/log.js";
import { createRateLimiter } from "../core/kernel/rate-limit.js";
import type { Database } from "../db/client.js";
import { AgentService } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { targetIdsOf } from "./audit-targets.js";
import { callerKey, ownerKey } from "./context.js";
import { permissionOf, permissionTables } from "./permissions.js";
import { REQUEST_ID_HEADER, wellFormedRequestId } from "./request-id.js";

/** Heartbeats change only liveness and metrics: agent registrations are audited, heartbeats are not. */
const unaudited: readonly DescMethod[] = [AgentService.method.heartbeat];

const audited = (method: DescMethod) => Boolean(permissionOf(method)?.changes) && !unaudited.includes(method);

const fullName = (method: DescMethod): `${string}/${string}` => `${method.parent.typeName}/${method.name}`;

const outcomeOf = (error: unknown): AuditOutcome =>
  error instanceof ConnectError ? (codeToString(error.code) as AuditOutcome) : "unknown";

function traceId(): string | null {
  const context = trace.getActiveSpan()?.spanContext();
  return context && isSpanContextValid(context) ? context.traceId : null;
}

/**
 * Records every call whose declared permission says it changes something, accepted or refused,
 * after the handler (and every interceptor inside this one) answered: who (the token, or the
 * agent's server), what (the method and the ids the request names), from where, and the outcome.
 * The entry is handed to the audit writer (core/audit/writer.ts), which appends it off the answer's path.
 */
export function auditInterceptor(db: Database, writer: AuditWriter): Interceptor {
  return (next) => async (req) => {
    if (!audited(req.method)) return next(req);
    const entry = async (outcome: AuditOutcome): Promise<AuditRecord> => {
      const caller = req.contextValues.get(callerKey);
      const owner = req.contextValues.get(ownerKey);
      const targetIds = req.stream ? [] : targetIdsOf(req.method.input, req.message);
      const base = {
        action: fullName(req.method),
        targetIds,
        clientAddress: caller?.address,
        userAgent: caller?.userAgent,
        requestId: currentLogContext()?.requestId,
        traceId: traceId(),
        outcome,
      };
      if (owner) return { ...base, ownerId: owner.id, actor: { kind: "token", id: owner.tokenId ?? "" } };
      if (permissionOf(req.method)?.role !== "agent") return { ...base, actor: { kind: "anonymous", id: caller?.address ?? "" } };
      const serverId = targetIds[0] ?? "";
      return { ...base, ownerId: await ownerOfServer(db, serverId), actor: { kind: "agent", id: serverId } };
    };
    // Recording never changes the answer: a failure to build or queue the entry is logged, not thrown.
    const recordCall = (outcome: AuditOutcome) =>
      entry(outcome)
        .then((record) => writer.write(record))
        .catch((error) => log.error("audit entry not recorded", { action: fullName(req.method), outcome, ...errorSummary(error) }));
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (error) {
      await recordCall(outcomeOf(error));
      throw error;
    }
    await recordCall("ok");
    return res;
  };
}

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;

const methodsByPath = new Map<string, DescMethod>(
  permissionTables.flatMap(([, table]) => table.map(([method]) => [`/${fullName(method)}`, method] as [string, DescMethod])),
);

/** Where a Node request came from: the peer's address and its user agent. */
export function callerOf(req: NodeRequest): { address: string | null; userAgent: string | null } {
  const userAgent = req.headers["user-agent"];
  return { address: req.socket?.remoteAddress ?? null, userAgent: typeof userAgent === "string" ? userAgent : null };
}

/**
 * Calls refused before Connect read them (no valid bearer token) are recorded under an anonymous
 * actor named by its address, in the installation's chain; a flood is bounded per address and
 * in all, so a caller without a token cannot grow the trail without limit.
 */
export function anonymousRefusals(writer: AuditWriter) {
  const perAddress = createRateLimiter({ burst: 20, perMinute: 60 });
  const overall = createRateLimiter({ burst: 200, perMinute: 1200 });
  let skipped = 0;
  return async (req: NodeRequest, error: ConnectError): Promise<void> => {
    const method = methodsByPath.get(req.url?.split("?", 1)[0] ?? "");
    if (!method || !audited(method)) return;
    const caller = callerOf(req);
    if (perAddress.take(caller.address ?? "") > 0 || overall.take("all") > 0) {
      skipped += 1;
      if (skipped % 1000 === 1) log.warn("anonymous refusals not audited (over their rate)", { skipped });
      return;
    }
    const requestId = req.headers[REQUEST_ID_HEADER];
    await writer.write({
      actor: { kind: "anonymous", id: caller.address ?? "" },
      action: fullName(method),
      clientAddress: caller.address,
      userAgent: caller.userAgent,
      requestId: typeof requestId === "string" && wellFormedRequestId(requestId) ? requestId : null,
      outcome: outcomeOf(error),
    });
  };
}
