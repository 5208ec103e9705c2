import type { ConnectRouter } from "@connectrpc/connect";
import type { InventoryDeps } from "../core/servers.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { clusterService } from "./cluster-service.js";
import { serverService } from "./server-service.js";

export type ApiDeps = InventoryDeps;

export function routes(deps: ApiDeps) {
  return (router: ConnectRouter) => {
    router.service(ClusterService, clusterService(deps.db));
    router.service(ServerService, serverService(deps));
  };
}
