import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { api } from "./client.js";

/** What a completion waits for the API at most, and the most names it offers. */
const completionBudget = { timeoutMs: 1500, names: 200 };

export type NameKind = "server" | "cluster";

/**
 * The names of the caller's servers or clusters from the API (the saved login, or AXION_API/AXION_TOKEN),
 * one page of at most completionBudget.names within completionBudget.timeoutMs; none on any error: a
 * completion never prints one.
 */
export async function namesFor(kind: NameKind): Promise<string[]> {
  try {
    const client = api();
    const options = { timeoutMs: completionBudget.timeoutMs };
    const request = { pageSize: completionBudget.names, pageToken: "" };
    const items =
      kind === "server"
        ? (await client.service(ServerService).listServers(request, options)).servers
        : (await client.service(ClusterService).listClusters(request, options)).clusters;
    return items.map((i) => i.name).filter((name) => /^[\w.@:+-]+$/.test(name));
  } catch {
    return [];
  }
}
