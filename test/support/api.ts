import { randomBytes } from "node:crypto";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { ProviderEndpoints } from "../../activities/providers/registry.js";
import type { EdgeLimits } from "../../api/edge-limits.js";
import { buildApiServer } from "../../api/http-server.js";
import type { ApiDeps } from "../../api/routes.js";
import type { HeartbeatIngestor } from "../../core/agents/heartbeat-ingest.js";
import { createOwnerToken } from "../../core/inventory/owners.js";
import type { WorkflowGateway } from "../../core/operations/provisioning.js";
import { createCredentialsCipher } from "../../core/security/credentials-cipher.js";
import type { KeyParsingPool } from "../../core/security/key-parsing.js";
import type { NetworkPolicy } from "../../core/security/network-policy.js";
import { type DatabaseHandle, openDatabase } from "../../db/client.js";
import { AgentService } from "../../gen/axion/infrastructure/v1/agent_service_pb.js";
import { AuditService } from "../../gen/axion/infrastructure/v1/audit_service_pb.js";
import { ClusterService } from "../../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { NotificationService } from "../../gen/axion/infrastructure/v1/notification_service_pb.js";
import { OperationService } from "../../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ProviderAccountService } from "../../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import { RolloutService } from "../../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ServerService } from "../../gen/axion/infrastructure/v1/server_service_pb.js";
import type { MetricsAccess } from "../../observability/metrics.js";

export type Backend = "pglite" | "postgres";
export type Protocol = "connect" | "grpc" | "grpc-web";

export interface TestApi {
  port: number;
  database: DatabaseHandle;
  baseUrl: string;
  ingestor: HeartbeatIngestor;
  /** A new owner with its own token. */
  newOwner(name?: string): Promise<{ token: string; ownerId: string }>;
  clients(
    token: string | undefined,
    protocol?: Protocol,
  ): {
    clusters: Client<typeof ClusterService>;
    servers: Client<typeof ServerService>;
    operations: Client<typeof OperationService>;
    providerAccounts: Client<typeof ProviderAccountService>;
    rollouts: Client<typeof RolloutService>;
    notifications: Client<typeof NotificationService>;
    /** With an owner token for InstallAgent/GetAgentStatus, with an agent token for Register/Heartbeat. */
    agents: Client<typeof AgentService>;
    audit: Client<typeof AuditService>;
  };
  close(): Promise<void>;
}

export const testCredentialsKey = randomBytes(32).toString("base64");

export async function startTestApi(
  options: {
    databaseUrl?: string;
    maxServersPerOwner?: number;
    database?: DatabaseHandle;
    workflows?: WorkflowGateway;
    /** 0.0.0.0 when test hosts' agents must reach the API. */
    listenHost?: string;
    heartbeatIntervalSeconds?: number;
    providers?: ProviderEndpoints;
    /** Limits at the edge; the defaults of core/kernel/config.ts where not given. */
    limits?: Partial<EdgeLimits>;
    keyParsing?: KeyParsingPool;
    networkPolicy?: NetworkPolicy;
    notifications?: ApiDeps["notifications"];
    /** AcceptHostKey's login timeout (SSH_CONNECT_TIMEOUT_MS); default 10 s. */
    sshConnectTimeoutMs?: number;
    /** Who may scrape /metrics; default: the service's default (loopback peers only). */
    metricsAccess?: MetricsAccess;
    /** The built console to serve under `/` (console/build.ts `ensureConsole`). */
    consoleDir?: string;
    /** false: no audit interceptor (bench/audit.ts measures what it costs). */
    audit?: boolean;
  } = {},
): Promise<TestApi> {
  const database = options.database ?? (await openDatabase({ databaseUrl: options.databaseUrl, dataDir: "memory://", poolSize: 20 }));
  await database.migrate();
  const cipher = createCredentialsCipher(testCredentialsKey);
  const server = buildApiServer(
    {
      db: database.db,
      listen: database.listen,
      cipher,
      maxServersPerOwner: options.maxServersPerOwner ?? 1000,
      heartbeatIntervalSeconds: options.heartbeatIntervalSeconds,
      workflows: options.workflows,
      providers: options.providers,
      keyParsing: options.keyParsing,
      networkPolicy: options.networkPolicy,
      notifications: options.notifications,
      sshConnectTimeoutMs: options.sshConnectTimeoutMs,
      consoleDir: options.consoleDir,
      audit: options.audit,
    },
    options.limits,
    options.metricsAccess,
  );
  const port = await server.listen(0, options.listenHost ?? "127.0.0.1");
  const baseUrl = `http://127.0.0.1:${port}`;
  let owners = 0;
  return {
    port,
    database,
    baseUrl,
    ingestor: server.ingestor,
    async newOwner(name) {
      owners += 1;
      const { owner, token } = await createOwnerToken(database.db, name ?? `owner-${owners}-${randomBytes(4).toString("hex")}`);
      return { token, ownerId: owner.id };
    },
    clients(token, protocol = "connect") {
      const auth: Interceptor = (next) => (req) => {
        if (token !== undefined) req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      };
      let transport: Transport;
      if (protocol === "grpc") transport = createGrpcTransport({ baseUrl, interceptors: [auth] });
      else if (protocol === "grpc-web") transport = createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors: [auth] });
      else transport = createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [auth] });
      return {
        clusters: createClient(ClusterService, transport),
        servers: createClient(ServerService, transport),
        operations: createClient(OperationService, transport),
        providerAccounts: createClient(ProviderAccountService, transport),
        rollouts: createClient(RolloutService, transport),
        notifications: createClient(NotificationService, transport),
        agents: createClient(AgentService, transport),
        audit: createClient(AuditService, transport),
      };
    },
    async close() {
      await server.close();
      await database.close();
    },
  };
}
