import type { ServiceImpl } from "@connectrpc/connect";
import { createCluster, deleteCluster, getCluster, listClusters, requireCluster, updateCluster } from "../core/inventory/clusters.js";
import { listServers } from "../core/inventory/servers.js";
import { parsePageRequest } from "../core/kernel/pagination.js";
import type { Database } from "../db/client.js";
import type { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { clusterMessage, serverMessage } from "./convert.js";
import { requireOwner } from "./owner.js";

export function clusterService(db: Database): ServiceImpl<typeof ClusterService> {
  return {
    async createCluster(req, ctx) {
      const cluster = await createCluster(db, requireOwner(ctx), { name: req.name, description: req.description, labels: req.labels });
      return { cluster: clusterMessage(cluster) };
    },
    async updateCluster(req, ctx) {
      const cluster = await updateCluster(db, requireOwner(ctx), req.id, {
        name: req.name,
        description: req.description,
        labels: req.labels?.entries,
      });
      return { cluster: clusterMessage(cluster) };
    },
    async deleteCluster(req, ctx) {
      await deleteCluster(db, requireOwner(ctx), req.id);
      return {};
    },
    async getCluster(req, ctx) {
      return { cluster: clusterMessage(await getCluster(db, requireOwner(ctx), req.id)) };
    },
    async listClusters(req, ctx) {
      const page = await listClusters(db, requireOwner(ctx), parsePageRequest(req.pageSize, req.pageToken));
      return { clusters: page.items.map(clusterMessage), nextPageToken: page.nextPageToken };
    },
    async listClusterServers(req, ctx) {
      const owner = requireOwner(ctx);
      const cluster = await requireCluster(db, owner, req.clusterId, "cluster_id");
      const page = await listServers(db, owner, parsePageRequest(req.pageSize, req.pageToken), { clusterId: cluster.id });
      return { servers: page.items.map(serverMessage), nextPageToken: page.nextPageToken };
    },
  };
}
