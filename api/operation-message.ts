import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { OperationRow } from "../core/operations/operations.js";
import { type Operation, OperationSchema } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import type { OperationProgress, StepProgress } from "../workflows/contract.js";
import { operationKindProto, operationStatusProto } from "./enum-mapping.js";

/** Steps come from the live query while running, from the stored result once ended. */
export function operationMessage(row: OperationRow, live?: OperationProgress): Operation {
  const steps = (live?.steps ?? (row.result?.steps as StepProgress[] | undefined) ?? []).map((s) => ({
    name: s.name,
    status: s.status,
    detail: s.detail ?? "",
    startTime: timestampFromDate(new Date(s.startedAt)),
    durationMs: BigInt(s.durationMs ?? 0),
  }));
  return create(OperationSchema, {
    id: row.id,
    serverId: row.serverId ?? "",
    kind: operationKindProto.toProto(row.kind),
    status: operationStatusProto.toProto(row.status),
    workflowId: row.workflowId,
    currentStep: live?.currentStep ?? "",
    steps,
    error: row.error ?? live?.lastError ?? "",
    startTime: timestampFromDate(row.startedAt),
    finishTime: row.finishedAt ? timestampFromDate(row.finishedAt) : undefined,
  });
}
