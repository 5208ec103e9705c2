import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { Role } from "../core/kernel/kinds.js";
import { AgentService } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { AuditService } from "../gen/axion/infrastructure/v1/audit_service_pb.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { NotificationService } from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import { OperationService } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ProviderAccountService } from "../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import { RequirementsService } from "../gen/axion/infrastructure/v1/requirements_service_pb.js";
import { RolloutService } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { TokenService } from "../gen/axion/infrastructure/v1/token_service_pb.js";
import { ServerReflection as ServerReflectionV1 } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

/**
 * What a caller needs to call an RPC: the weakest role allowed, and whether the call changes anything
 * (every change is audited, refused ones included). `agent`: the caller is an agent with its own
 * per-server token, checked in the handler.
 */
export type Permission = { role: Role; changes: boolean } | { role: "agent"; changes: true };

const read: Permission = { role: "viewer", changes: false };
/** Runs operations, plans and rollouts on servers, or steers them. */
const operate: Permission = { role: "operator", changes: true };
/** Credentials, host keys, reinstall, inventory, provider accounts, channels, members, roles and tokens. */
const administer: Permission = { role: "admin", changes: true };
/** Any member, bounded by its own role and clusters in the handler (a token never exceeds its creator). */
const selfService: Permission = { role: "viewer", changes: true };
const agent: Permission = { role: "agent", changes: true };

/** Every method of a service named, so a new RPC without a declared permission is a compile error. */
type ServicePermissions<S extends DescService> = { [M in keyof S["method"]]: Permission };

const agentPermissions: ServicePermissions<typeof AgentService> = {
  register: agent,
  heartbeat: agent,
  installAgent: operate,
  getAgentStatus: read,
  listMetrics: read,
};

const clusterPermissions: ServicePermissions<typeof ClusterService> = {
  createCluster: administer,
  updateCluster: administer,
  deleteCluster: administer,
  getCluster: read,
  listClusters: read,
  listClusterServers: read,
};

const serverPermissions: ServicePermissions<typeof ServerService> = {
  createServer: administer,
  updateServer: administer,
  deleteServer: administer,
  getServer: read,
  listServers: read,
  testServerConnection: operate,
  configureServer: operate,
  setupDeployKey: operate,
  recoverServer: operate,
  reinstallServer: administer,
  acceptHostKey: administer,
  planServer: operate,
};

const operationPermissions: ServicePermissions<typeof OperationService> = {
  getOperation: read,
  listOperations: read,
  watchOperation: read,
  cancelOperation: operate,
};

const providerAccountPermissions: ServicePermissions<typeof ProviderAccountService> = {
  createProviderAccount: administer,
  updateProviderAccount: administer,
  deleteProviderAccount: administer,
  getProviderAccount: read,
  listProviderAccounts: read,
};

const requirementsPermissions: ServicePermissions<typeof RequirementsService> = {
  calculateSystemRequirements: read,
};

const rolloutPermissions: ServicePermissions<typeof RolloutService> = {
  planRollout: operate,
  startRollout: operate,
  getRollout: read,
  listRollouts: read,
  watchRollout: read,
  pauseRollout: operate,
  resumeRollout: operate,
  abortRollout: operate,
};

const notificationPermissions: ServicePermissions<typeof NotificationService> = {
  createNotificationChannel: administer,
  listNotificationChannels: read,
  testNotificationChannel: administer,
  deleteNotificationChannel: administer,
  getAlertRules: read,
  updateAlertRules: administer,
  listAlerts: read,
  getAlert: read,
};

const tokenPermissions: ServicePermissions<typeof TokenService> = {
  listTokens: read,
  createToken: selfService,
  revokeToken: selfService,
  setTokenExpiry: selfService,
};

/** The audit trail is read by admins only; reading it changes nothing (and is not itself audited). */
const auditPermissions: ServicePermissions<typeof AuditService> = {
  listAuditEvents: { role: "admin", changes: false },
  verifyAuditTrail: { role: "admin", changes: false },
};

function entries<S extends DescService>(service: S, table: ServicePermissions<S>): [DescMethod, Permission][] {
  return Object.entries(table).map(([name, permission]) => {
    const method = (service.method as Record<string, DescMethod | undefined>)[name];
    if (!method) throw new Error(`${service.typeName} has no method ${name}`);
    return [method, permission];
  });
}

/** The services the API routes, each with its table; `routes.ts` routes exactly these (checked by test/permissions.test.ts). */
export const permissionTables = [
  [AgentService, entries(AgentService, agentPermissions)],
  [ClusterService, entries(ClusterService, clusterPermissions)],
  [ServerService, entries(ServerService, serverPermissions)],
  [OperationService, entries(OperationService, operationPermissions)],
  [ProviderAccountService, entries(ProviderAccountService, providerAccountPermissions)],
  [RequirementsService, entries(RequirementsService, requirementsPermissions)],
  [RolloutService, entries(RolloutService, rolloutPermissions)],
  [NotificationService, entries(NotificationService, notificationPermissions)],
  [TokenService, entries(TokenService, tokenPermissions)],
  [AuditService, entries(AuditService, auditPermissions)],
] as const satisfies readonly (readonly [DescService, [DescMethod, Permission][]])[];

/** gRPC server reflection tells the routed services' schema and no owner's data: any token may read it. */
const reflectionMethods: [DescMethod, Permission][] = [ServerReflectionV1, ServerReflectionV1alpha].flatMap((service) =>
  service.methods.map((method): [DescMethod, Permission] => [method, read]),
);

const byMethod = new Map<DescMethod, Permission>([...permissionTables.flatMap(([, table]) => table), ...reflectionMethods]);

/** The declared permission of a method; a method nobody declared has none (callers refuse it). */
export function permissionOf(method: DescMethod): Permission | undefined {
  return byMethod.get(method);
}
