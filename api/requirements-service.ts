import type { ServiceImpl } from "@connectrpc/connect";
import { clusterAgentReports } from "../core/agents/agents.js";
import { requireCluster } from "../core/inventory/clusters.js";
import { calculateRequirements, type ResourceAmounts, type ServerCapacity } from "../core/inventory/requirements.js";
import type { Database } from "../db/client.js";
import type { RequirementsService, Resources } from "../gen/axion/infrastructure/v1/requirements_service_pb.js";
import { requireOwner } from "./owner.js";

const toAmounts = (r: Resources | undefined): ResourceAmounts => ({
  cpuMillis: Number(r?.cpuMillis ?? 0n),
  memoryBytes: Number(r?.memoryBytes ?? 0n),
  diskBytes: Number(r?.diskBytes ?? 0n),
});
const toResources = (a: ResourceAmounts) => ({
  cpuMillis: BigInt(a.cpuMillis),
  memoryBytes: BigInt(a.memoryBytes),
  diskBytes: BigInt(a.diskBytes),
});

interface AgentInfoJson {
  cpuCount?: number;
  memoryTotalBytes?: string;
  diskTotalBytes?: string;
}
interface MetricsJson {
  cpuPercent?: number;
  memoryUsedBytes?: string;
  disks?: { usedBytes?: string }[];
}

/** Capacity and current use of a cluster's servers, as their agents last reported them. Servers without an agent report are left out. */
async function clusterCapacity(db: Database, clusterId: string): Promise<ServerCapacity[]> {
  const rows = await clusterAgentReports(db, clusterId);
  return rows
    .filter((r) => r.info)
    .map((r) => {
      const info = r.info as AgentInfoJson;
      const metrics = (r.metrics ?? {}) as MetricsJson;
      const cpuMillis = (info.cpuCount ?? 0) * 1000;
      return {
        serverId: r.serverId,
        capacity: { cpuMillis, memoryBytes: Number(info.memoryTotalBytes ?? 0), diskBytes: Number(info.diskTotalBytes ?? 0) },
        used: {
          cpuMillis: Math.round(((metrics.cpuPercent ?? 0) / 100) * cpuMillis),
          memoryBytes: Number(metrics.memoryUsedBytes ?? 0),
          diskBytes: (metrics.disks ?? []).reduce((sum, d) => sum + Number(d.usedBytes ?? 0), 0),
        },
      };
    });
}

export function requirementsService(db: Database): ServiceImpl<typeof RequirementsService> {
  return {
    async calculateSystemRequirements(req, ctx) {
      const owner = requireOwner(ctx);
      const cluster = req.clusterId ? await requireCluster(db, owner, req.clusterId, "cluster_id") : undefined;
      const result = calculateRequirements(
        req.services.map((s) => ({ name: s.name, requests: toAmounts(s.requests), replicas: s.replicas })),
        req.dependencies.map((d) => ({ from: d.from, to: d.to })),
        cluster ? await clusterCapacity(db, cluster.id) : undefined,
      );
      return {
        total: toResources(result.total),
        startOrder: result.startOrder,
        fits: result.fit?.fits ?? false,
        placements: result.fit?.placements ?? [],
        servers: (result.fit?.servers ?? []).map((s) => ({
          serverId: s.serverId,
          freeBefore: toResources(s.freeBefore),
          freeAfter: toResources(s.freeAfter),
        })),
        unplaced: result.fit?.unplaced ?? [],
        missing: result.fit ? toResources(result.fit.missing) : undefined,
      };
    },
  };
}
