import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ClusterView } from "../core/clusters.js";
import { AppError } from "../core/errors.js";
import type { ServerRow } from "../core/servers.js";
import type { ServerStatus as DbServerStatus } from "../db/schema.js";
import { type Cluster, ClusterSchema } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import {
  PlanOutcome as ProtoPlanOutcome,
  RolloutKind as ProtoRolloutKind,
  type ServerPlan as ProtoServerPlan,
  ServerPlanSchema,
  StepPlanSchema,
} from "../gen/axion/infrastructure/v1/plan_pb.js";
import { type Server, ServerSchema, ServerStatus, SshAuthMethod } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import type { PlanOutcome, RolloutKind, ServerPlan } from "../workflows/contract.js";

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

export const statusToProto: Record<DbServerStatus, ServerStatus> = {
  PENDING: ServerStatus.PENDING,
  PROVISIONING: ServerStatus.PROVISIONING,
  ONLINE: ServerStatus.ONLINE,
  OFFLINE: ServerStatus.OFFLINE,
  UNREACHABLE: ServerStatus.UNREACHABLE,
  HOSTKEY_MISMATCH: ServerStatus.HOSTKEY_MISMATCH,
  ERROR: ServerStatus.ERROR,
  REINSTALLING: ServerStatus.REINSTALLING,
  CONFIGURED: ServerStatus.CONFIGURED,
};

export function statusFromProto(status: ServerStatus): DbServerStatus | undefined {
  return (Object.entries(statusToProto) as [DbServerStatus, ServerStatus][]).find(([, v]) => v === status)?.[0];
}

export function serverMessage(row: ServerRow): Server {
  return create(ServerSchema, {
    id: row.id,
    clusterId: row.clusterId,
    name: row.name,
    host: row.host,
    sshPort: row.sshPort,
    sshUser: row.sshUser,
    authMethod: row.authMethod === "password" ? SshAuthMethod.PASSWORD : SshAuthMethod.PRIVATE_KEY,
    labels: row.labels,
    status: statusToProto[row.status],
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

const rolloutKinds: Record<Exclude<ProtoRolloutKind, ProtoRolloutKind.UNSPECIFIED>, RolloutKind> = {
  [ProtoRolloutKind.CONFIGURE]: "configure",
  [ProtoRolloutKind.DEPLOY_KEY_ADD]: "deploy_key_add",
  [ProtoRolloutKind.DEPLOY_KEY_REMOVE]: "deploy_key_remove",
  [ProtoRolloutKind.RECOVER]: "recover",
  [ProtoRolloutKind.INSTALL_AGENT]: "install_agent",
  [ProtoRolloutKind.TEST_CONNECTION]: "test_connection",
};

/** The kind a request names; InvalidArgument naming `field` for UNSPECIFIED or a number no kind has. */
export function rolloutKindFromProto(kind: ProtoRolloutKind, field = "kind"): RolloutKind {
  const found = rolloutKinds[kind as keyof typeof rolloutKinds];
  if (!found) throw AppError.invalid(field, `is required: one of ${Object.values(rolloutKinds).join(", ")}`);
  return found;
}

export function rolloutKindToProto(kind: RolloutKind): ProtoRolloutKind {
  const found = (Object.entries(rolloutKinds) as [string, RolloutKind][]).find(([, v]) => v === kind);
  return found ? (Number(found[0]) as ProtoRolloutKind) : ProtoRolloutKind.UNSPECIFIED;
}

const planOutcomes: Record<PlanOutcome, ProtoPlanOutcome> = {
  would_change: ProtoPlanOutcome.WOULD_CHANGE,
  unchanged: ProtoPlanOutcome.UNCHANGED,
  cannot: ProtoPlanOutcome.CANNOT,
};

export const planOutcomeToProto = (outcome: PlanOutcome): ProtoPlanOutcome => planOutcomes[outcome];

export function serverPlanMessage(plan: ServerPlan): ProtoServerPlan {
  return create(ServerPlanSchema, {
    serverId: plan.serverId,
    serverName: plan.serverName,
    outcome: planOutcomes[plan.outcome],
    reason: plan.reason ?? "",
    steps: plan.steps.map((s) => create(StepPlanSchema, { name: s.name, outcome: planOutcomes[s.outcome], detail: s.detail })),
  });
}
