import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ClusterView } from "../core/inventory/clusters.js";
import type { ServerRow } from "../core/inventory/servers.js";
import { AppError } from "../core/kernel/errors.js";
import type { RolloutKind } from "../core/kernel/kinds.js";
import { type Cluster, ClusterSchema } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import {
  type RolloutKind as ProtoRolloutKind,
  type ServerPlan as ProtoServerPlan,
  ServerPlanSchema,
  StepPlanSchema,
} from "../gen/axion/infrastructure/v1/plan_pb.js";
import { type Server, ServerSchema } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import type { ServerPlan } from "../workflows/contract.js";
import { authMethodProto, planOutcomeProto, rolloutKindProto, serverStatusProto } from "./enum-mapping.js";

/** Row → message mapping. Servers are built field by field: the credential has no field to leak into. */

export function clusterMessage(row: ClusterView): Cluster {
  return create(ClusterSchema, {
    id: row.id,
    name: row.name,
    description: row.description,
    labels: row.labels,
    serverCount: row.serverCount,
    createTime: timestampFromDate(row.createdAt),
    updateTime: timestampFromDate(row.updatedAt),
  });
}

export function serverMessage(row: ServerRow): Server {
  return create(ServerSchema, {
    id: row.id,
    clusterId: row.clusterId,
    name: row.name,
    host: row.host,
    sshPort: row.sshPort,
    sshUser: row.sshUser,
    authMethod: authMethodProto.toProto(row.authMethod),
    becomePasswordSet: row.becomePasswordSet,
    labels: row.labels,
    status: serverStatusProto.toProto(row.status),
    statusReason: row.statusReason,
    statusChangeTime: timestampFromDate(row.statusChangedAt),
    hostKeyFingerprint: row.hostKeyFingerprint ?? "",
    provider: row.provider ?? "",
    providerServerId: row.providerServerId ?? "",
    providerAccountId: row.providerAccountId ?? "",
    createTime: timestampFromDate(row.createdAt),
    updateTime: timestampFromDate(row.updatedAt),
  });
}

/** The kind a request names; InvalidArgument naming `field` for UNSPECIFIED or a number no kind has. */
export function rolloutKindFromProto(kind: ProtoRolloutKind, field = "kind"): RolloutKind {
  const found = rolloutKindProto.fromProto(kind);
  if (!found) throw AppError.invalid(field, `is required: one of ${rolloutKindProto.names.join(", ")}`);
  return found;
}

export function serverPlanMessage(plan: ServerPlan): ProtoServerPlan {
  return create(ServerPlanSchema, {
    serverId: plan.serverId,
    serverName: plan.serverName,
    outcome: planOutcomeProto.toProto(plan.outcome),
    reason: plan.reason ?? "",
    steps: plan.steps.map((s) => create(StepPlanSchema, { name: s.name, outcome: planOutcomeProto.toProto(s.outcome), detail: s.detail })),
  });
}
