import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ClusterView } from "../core/clusters.js";
import type { ServerRow } from "../core/servers.js";
import type { ServerStatus as DbServerStatus } from "../db/schema.js";
import { type Cluster, ClusterSchema } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { type Server, ServerSchema, ServerStatus, SshAuthMethod } from "../gen/axion/infrastructure/v1/server_service_pb.js";

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
