import type { ConnectRouter } from "@connectrpc/connect";
import type { ProviderEndpoints } from "../activities/providers/registry.js";
import type { HeartbeatIngestor } from "../core/agents/heartbeat-ingest.js";
import type { MetricTierSettings } from "../core/agents/metric-tiers.js";
import type { AuditWriter } from "../core/audit/writer.js";
import type { InventoryDeps } from "../core/inventory/servers.js";
import type { WorkflowGateway } from "../core/operations/provisioning.js";
import type { Listen } from "../db/client.js";
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
import { type AgentServiceDeps, agentService } from "./agent-service.js";
import { auditService } from "./audit-service.js";
import { clusterService } from "./cluster-service.js";
import { rewriteErrorAnswers } from "./decode-errors.js";
import { AGENT_MAX_REQUEST_BYTES } from "./edge-limits.js";
import { type NotificationServiceDeps, notificationService } from "./notification-service.js";
import { operationService } from "./operation-service.js";
import type { OwnerBudgets } from "./owner-limits.js";
import { providerAccountService } from "./provider-account-service.js";
import { registerReflection } from "./reflection-service.js";
import { requirementsService } from "./requirements-service.js";
import { rolloutService } from "./rollout-service.js";
import { serverService } from "./server-service.js";
import { tokenService } from "./token-service.js";

export type ApiDeps = InventoryDeps & {
  /** Absent on an API without Temporal: provisioning RPCs then answer Unavailable. */
  workflows?: WorkflowGateway;
  /** Seconds between agent heartbeats, told to agents at registration. */
  heartbeatIntervalSeconds?: number;
  /** Register/Heartbeat calls per agent per heartbeat interval (AGENT_RATE_LIMIT). */
  agentCallsPerInterval?: number;
  /** Retention of each metrics tier (ListMetrics picks its tier by them); default: the configuration's defaults. */
  metricTiers?: MetricTierSettings;
  /** Where heartbeats go; by default a batching ingestor on `db` (the benchmark swaps in one write per heartbeat). */
  ingestor?: HeartbeatIngestor;
  /** Token rotation notifications; without them a rotated agent token keeps working for up to 10 s. */
  listen?: Listen;
  /** Where the VPS providers' APIs are, for ReinstallServer's checks; absent, ReinstallServer answers Unavailable. */
  providers?: ProviderEndpoints;
  /** SSH_CONNECT_TIMEOUT_MS, for AcceptHostKey's one login. */
  sshConnectTimeoutMs?: number;
  /** NotificationService limits and rule defaults (config); absent: the built-in defaults. */
  notifications?: NotificationServiceDeps["notifications"];
  /** The built console (console/dist), served under `/`; absent, only the API answers. */
  consoleDir?: string;
  /** false: no audit interceptor (only bench/audit.ts, to measure what it costs). */
  audit?: boolean;
};

/** What buildApiServer adds: the per-owner budgets its interceptor shares with the handlers. */
export type RoutedApiDeps = ApiDeps & {
  budgets: OwnerBudgets;
  /** The audit appends of this API; AuditService reads after they are written. */
  auditWriter: AuditWriter;
  /** ROLLOUT_QUERIES_PER_OWNER. */
  rolloutQueriesPerOwner: number;
  /** Aborts when the API starts to drain (api/drain.ts). */
  draining?: AbortSignal;
};

/** `maxRequestBytes`: the most a request body may decompress to (the edge limit), for reading it again. */
export function routes(deps: RoutedApiDeps, agents: AgentServiceDeps, maxRequestBytes: number) {
  return (router: ConnectRouter) => {
    router.service(AgentService, agentService(agents), { readMaxBytes: AGENT_MAX_REQUEST_BYTES });
    router.service(ClusterService, clusterService(deps.db));
    router.service(ServerService, serverService(deps));
    router.service(OperationService, operationService(deps.db, deps.workflows, deps.draining));
    router.service(RequirementsService, requirementsService(deps.db));
    router.service(TokenService, tokenService(deps.db));
    router.service(ProviderAccountService, providerAccountService(deps));
    router.service(RolloutService, rolloutService(deps));
    router.service(NotificationService, notificationService(deps));
    router.service(AuditService, auditService(deps.db, deps.auditWriter));
    registerReflection(router);
    rewriteErrorAnswers(router, maxRequestBytes);
  };
}
