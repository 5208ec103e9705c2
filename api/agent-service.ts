import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { createAgentRateLimiter } from "../core/agents/agent-rate-limit.js";
import { getAgent, recordRegistration } from "../core/agents/agents.js";
import type { HeartbeatIngestor } from "../core/agents/heartbeat-ingest.js";
import { agentInfoRecord, heartbeatRecord } from "../core/agents/heartbeat-intake.js";
import { DEFAULT_METRIC_TIERS, listMetricHistory, type MetricTier, type MetricTierSettings } from "../core/agents/metric-tiers.js";
import { requireServer } from "../core/inventory/servers.js";
import { bearerToken } from "../core/kernel/bearer-token.js";
import { AppError } from "../core/kernel/errors.js";
import { requireId } from "../core/kernel/ids.js";
import { timestampField } from "../core/kernel/validation.js";
import { startServerOperation, type WorkflowGateway } from "../core/operations/provisioning.js";
import type { Database } from "../db/client.js";
import {
  AgentInfoSchema,
  type AgentService,
  type HeartbeatRequest,
  MetricsSchema,
  MetricsTier,
} from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { countHeartbeat } from "../observability/metrics.js";
import { serverStatusProto } from "./enum-mapping.js";
import { operationMessage } from "./operation-message.js";
import { requireOwner } from "./owner.js";
import { requireGateway } from "./server-service.js";

export interface AgentServiceDeps {
  db: Database;
  workflows?: WorkflowGateway;
  ingestor: HeartbeatIngestor;
  verifyAgentToken: (serverId: string, token: string) => Promise<boolean>;
  heartbeatIntervalSeconds: number;
  /** Register and Heartbeat calls one agent may make per heartbeat interval on average (bursts of twice that); default 5. */
  agentCallsPerInterval?: number;
  /** Retention of each metrics tier, which ListMetrics' tier choice follows; default: core/kernel/config.ts defaults. */
  metricTiers?: MetricTierSettings;
}

const tierToProto: Record<MetricTier, MetricsTier> = {
  raw: MetricsTier.RAW,
  minute: MetricsTier.MINUTE,
  hour: MetricsTier.HOUR,
};

/** One limiter per set of deps, so the Connect route and the fast path share each agent's budget. */
const limiters = new WeakMap<AgentServiceDeps, (serverId: string) => boolean>();
function takeAgentCall(deps: AgentServiceDeps, serverId: string): void {
  let limiter = limiters.get(deps);
  if (!limiter) {
    limiter = createAgentRateLimiter({ perInterval: deps.agentCallsPerInterval ?? 5, intervalSeconds: deps.heartbeatIntervalSeconds });
    limiters.set(deps, limiter);
  }
  if (!limiter(serverId)) {
    throw new AppError(
      "resource_exhausted",
      `too many calls from this agent: at most ${deps.agentCallsPerInterval ?? 5} per ${deps.heartbeatIntervalSeconds} s`,
    );
  }
}

/** An agent speaks only for the server its token was issued to, and within its rate limit. */
async function requireAgent(deps: AgentServiceDeps, authorization: string | null, serverId: string): Promise<string> {
  const id = requireId("server_id", serverId);
  const token = bearerToken(authorization);
  if (!token || !(await deps.verifyAgentToken(id, token))) {
    throw new ConnectError("invalid agent token for this server", Code.Unauthenticated);
  }
  takeAgentCall(deps, id);
  return id;
}

/** Heartbeat handling shared by the Connect route and the HTTP/1.1 JSON fast path. */
export function acceptHeartbeat(deps: AgentServiceDeps, authorization: string | null, req: HeartbeatRequest): Promise<void> {
  return countHeartbeat(
    deps.ingestor.take(async () =>
      heartbeatRecord(await requireAgent(deps, authorization, req.serverId), req, deps.ingestor.databaseNow()),
    ),
  );
}

export function agentService(deps: AgentServiceDeps): ServiceImpl<typeof AgentService> {
  return {
    async register(req, ctx) {
      const serverId = await requireAgent(deps, ctx.requestHeader.get("authorization"), req.serverId);
      await recordRegistration(deps.db, serverId, agentInfoRecord(req.info));
      return { heartbeatIntervalSeconds: deps.heartbeatIntervalSeconds };
    },
    async heartbeat(req, ctx) {
      await acceptHeartbeat(deps, ctx.requestHeader.get("authorization"), req);
      return {};
    },
    async installAgent(req, ctx) {
      const { operation } = await startServerOperation(deps.db, requireGateway(deps.workflows), requireOwner(ctx), req.id, "install_agent");
      return { operation: operationMessage(operation) };
    },
    async getAgentStatus(req, ctx) {
      const server = await requireServer(deps.db, requireOwner(ctx), req.id);
      const agent = await getAgent(deps.db, server.id);
      return {
        serverId: server.id,
        status: serverStatusProto.toProto(server.status),
        installed: Boolean(agent),
        info: agent?.info ? fromJson(AgentInfoSchema, agent.info as JsonValue, { ignoreUnknownFields: true }) : undefined,
        registeredTime: agent?.registeredAt ? timestampFromDate(agent.registeredAt) : undefined,
        lastHeartbeatTime: agent?.lastHeartbeatAt ? timestampFromDate(agent.lastHeartbeatAt) : undefined,
        latestMetrics: agent?.latestMetrics
          ? fromJson(MetricsSchema, agent.latestMetrics as JsonValue, { ignoreUnknownFields: true })
          : undefined,
      };
    },
    async listMetrics(req, ctx) {
      const server = await requireServer(deps.db, requireOwner(ctx), req.id);
      if (req.limit > 5000) throw AppError.invalid("limit", "must be at most 5000");
      if (req.stepSeconds > 366 * 86400) throw AppError.invalid("step_seconds", "must be at most a year");
      const from = req.startTime ? timestampField("start_time", req.startTime) : undefined;
      const to = req.endTime ? timestampField("end_time", req.endTime) : undefined;
      if (from && to && from > to) throw AppError.invalid("start_time", "must not be after end_time");
      const history = await listMetricHistory(deps.db, deps.metricTiers ?? DEFAULT_METRIC_TIERS, server.id, {
        from,
        to,
        stepSeconds: req.stepSeconds,
        limit: req.limit || 1000,
      });
      const metrics = (json: Record<string, unknown>) => fromJson(MetricsSchema, json as JsonValue, { ignoreUnknownFields: true });
      return {
        tier: tierToProto[history.tier],
        truncated: history.truncated,
        samples: history.points.map((p) => ({
          sampleTime: timestampFromDate(p.time),
          metrics: metrics(p.avg),
          min: metrics(p.min),
          max: metrics(p.max),
          sampleCount: p.samples,
        })),
      };
    },
  };
}
