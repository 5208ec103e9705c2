import type { ConnectRouter } from "@connectrpc/connect";
import type { WorkflowGateway } from "../core/provisioning.js";
import type { InventoryDeps } from "../core/servers.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { OperationService } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { clusterService } from "./cluster-service.js";
import { operationService } from "./operation-service.js";
import { serverService } from "./server-service.js";

export type ApiDeps = InventoryDeps & {
  /** Absent on an API without Temporal: provisioning RPCs then answer Unavailable. */
  workflows?: WorkflowGateway;
};

export function routes(deps: ApiDeps) {
  return (router: ConnectRouter) => {
    router.service(ClusterService, clusterService(deps.db));
    router.service(ServerService, serverService(deps));
    router.service(OperationService, operationService(deps.db, deps.workflows));
  };
}
