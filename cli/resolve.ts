import { Code, ConnectError } from "@connectrpc/connect";
import { counted } from "../core/kernel/plural.js";
import type { Cluster } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import type { Server, ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import type { Api } from "./client.js";
import { CliError } from "./errors.js";
import { minimumIdPrefix } from "./id-prefix.js";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Every item of a paginated list. */
export async function listAll<T>(page: (pageToken: string) => Promise<{ items: T[]; next: string }>): Promise<T[]> {
  const all: T[] = [];
  let token = "";
  do {
    const { items, next } = await page(token);
    all.push(...items);
    token = next;
  } while (token !== "");
  return all;
}

export const allServers = (api: Api, filters: { clusterId?: string; statuses?: ServerStatus[]; selector?: string } = {}) =>
  listAll(async (pageToken) => {
    const r = await api.service(ServerService).listServers({ ...filters, pageSize: 500, pageToken });
    return { items: r.servers, next: r.nextPageToken };
  });

export const allClusters = (api: Api) =>
  listAll(async (pageToken) => {
    const r = await api.service(ClusterService).listClusters({ pageSize: 500, pageToken });
    return { items: r.clusters, next: r.nextPageToken };
  });

/**
 * One item by its exact id, its name, or a unique id prefix (at least minimumIdPrefix characters).
 * None: exit 3. Several: exit 2, naming them.
 */
export function pick<T extends { id: string; name: string }>(what: string, handle: string, items: T[]): T {
  const exact = items.filter((i) => i.id === handle || i.name === handle);
  if (exact.length === 1) return exact[0] as T;
  const matches =
    exact.length > 1 ? exact : handle.length >= minimumIdPrefix ? items.filter((i) => i.id.startsWith(handle.toLowerCase())) : [];
  if (matches.length === 1) return matches[0] as T;
  if (matches.length === 0) throw CliError.notFound(`no ${what} named or with id "${handle}"`);
  const names = matches
    .slice(0, 5)
    .map((m) => `${m.name} (${m.id})`)
    .join(", ");
  throw CliError.usage(
    `"${handle}" matches ${counted(matches.length, what)}: ${names}${matches.length > 5 ? ", …" : ""}; give the full id or the name`,
  );
}

/** A full id is looked up directly (one call); anything else through the list. */
export async function byIdOrList<T extends { id: string; name: string }>(
  what: string,
  handle: string,
  get: (id: string) => Promise<T | undefined>,
  list: () => Promise<T[]>,
): Promise<T> {
  if (uuid.test(handle)) {
    try {
      const found = await get(handle.toLowerCase());
      if (found) return found;
    } catch (error) {
      if (!(error instanceof ConnectError && error.code === Code.NotFound)) throw error;
    }
  }
  return pick(what, handle, await list());
}

export const resolveServer = (api: Api, handle: string): Promise<Server> =>
  byIdOrList(
    "server",
    handle,
    async (id) => (await api.service(ServerService).getServer({ id })).server,
    () => allServers(api),
  );

export const resolveCluster = (api: Api, handle: string): Promise<Cluster> =>
  byIdOrList(
    "cluster",
    handle,
    async (id) => (await api.service(ClusterService).getCluster({ id })).cluster,
    () => allClusters(api),
  );
