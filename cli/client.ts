import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AgentService } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { OperationService } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { RolloutService } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { TokenService } from "../gen/axion/infrastructure/v1/token_service_pb.js";
import { setApiUrl } from "./api-url.js";
import { connection } from "./config.js";

export interface Api {
  url: string;
  clusters: Client<typeof ClusterService>;
  servers: Client<typeof ServerService>;
  operations: Client<typeof OperationService>;
  agents: Client<typeof AgentService>;
  tokens: Client<typeof TokenService>;
  rollouts: Client<typeof RolloutService>;
}

/** The generated Connect clients over one transport, with the bearer token on every call. */
export function apiClient(url: string, token: string | undefined): Api {
  const auth: Interceptor = (next) => (req) => {
    if (token) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [auth] });
  return {
    url,
    clusters: createClient(ClusterService, transport),
    servers: createClient(ServerService, transport),
    operations: createClient(OperationService, transport),
    agents: createClient(AgentService, transport),
    tokens: createClient(TokenService, transport),
    rollouts: createClient(RolloutService, transport),
  };
}

let current: Api | undefined;

/** The client for this invocation: from AXION_API/AXION_TOKEN or the config file. */
export function api(): Api {
  if (!current) {
    const { api: url, token } = connection();
    current = apiClient(url, token);
    setApiUrl(url);
  }
  return current;
}
