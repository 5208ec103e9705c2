import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { AuditEventRow } from "../core/audit/list.js";
import { listAuditEvents } from "../core/audit/list.js";
import { auditFilter, chainFor } from "../core/audit/trail.js";
import { verifyAuditChain } from "../core/audit/verify.js";
import type { AuditWriter } from "../core/audit/writer.js";
import { parsePageRequest } from "../core/kernel/pagination.js";
import type { Database } from "../db/client.js";
import { type AuditEvent, AuditEventSchema, type AuditService } from "../gen/axion/infrastructure/v1/audit_service_pb.js";
import { auditActorKindProto } from "./enum-mapping.js";
import { requireOwner } from "./owner.js";

function auditEventMessage(row: AuditEventRow): AuditEvent {
  return create(AuditEventSchema, {
    seq: BigInt(row.seq),
    eventId: row.id,
    time: timestampFromDate(row.at),
    actor: { kind: auditActorKindProto.toProto(row.actorKind), id: row.actorId, systemName: row.actorName ?? "" },
    action: row.action,
    targetIds: row.targetIds,
    clientAddress: row.clientAddress ?? "",
    userAgent: row.userAgent ?? "",
    requestId: row.requestId ?? "",
    traceId: row.traceId ?? "",
    detail: row.detail ?? "",
    outcome: row.outcome,
    hash: row.hash,
  });
}

/** The calling organization's audit trail (core/audit/). */
export function auditService(db: Database, writer: AuditWriter): ServiceImpl<typeof AuditService> {
  return {
    async listAuditEvents(req, ctx) {
      const chain = chainFor(requireOwner(ctx), req.installation);
      const filter = auditFilter({
        ...req,
        since: req.since ? timestampDate(req.since) : undefined,
        until: req.until ? timestampDate(req.until) : undefined,
      });
      await writer.drained(); // this API's own answered calls are on record before it reads
      const page = await listAuditEvents(db, chain, filter, parsePageRequest(req.pageSize, req.pageToken));
      return { events: page.items.map(auditEventMessage), nextPageToken: page.nextPageToken };
    },
    async verifyAuditTrail(req, ctx) {
      await writer.drained();
      const result = await verifyAuditChain(db, chainFor(requireOwner(ctx), req.installation));
      if (result.ok) {
        return {
          intact: true,
          checked: BigInt(result.checked),
          checkpointSeq: BigInt(result.checkpointSeq),
          lastSeq: BigInt(result.lastSeq),
          lastHash: result.lastHash,
        };
      }
      return {
        intact: false,
        checked: BigInt(result.checked),
        checkpointSeq: BigInt(result.checkpointSeq),
        brokenSeq: BigInt(result.seq),
        problem: result.problem,
      };
    },
  };
}
