import { useQuery } from "@connectrpc/connect-query";
import { AgentService } from "../../gen/axion/infrastructure/v1/agent_service_pb.js";
import type { Server } from "../../gen/axion/infrastructure/v1/server_service_pb.js";
import { ago, isoTime, shown, statusName, usage } from "./format.js";

/** Agent facts of one visible row: only rows on screen ask (the list is virtualized). */
function AgentCells({ serverId }: { serverId: string }) {
  const { data } = useQuery(AgentService.method.getAgentStatus, { id: serverId }, { refetchInterval: 15_000, staleTime: 10_000 });
  const u = usage(data?.latestMetrics);
  const version = data?.installed ? shown(data.info?.agentVersion ?? "") || "?" : "—";
  return (
    <>
      <td>{version}</td>
      <td title={isoTime(data?.lastHeartbeatTime)}>{data?.lastHeartbeatTime ? ago(data.lastHeartbeatTime) : "—"}</td>
      <td className="num">{u.cpu}</td>
      <td className="num">{u.memory}</td>
      <td className="num">{u.disk}</td>
    </>
  );
}

export function ServerRow({ server, clusterName }: { server: Server; clusterName: string }) {
  const status = statusName(server.status);
  const labels = Object.entries(server.labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`);
  return (
    <>
      <th scope="row" className="name">
        {shown(server.name)}
      </th>
      <td>{shown(clusterName)}</td>
      <td className="labels">
        {labels.map((label) => (
          <span key={label} className="label">
            {shown(label)}
          </span>
        ))}
      </td>
      <td className="status">
        <span className={`badge status-${status.toLowerCase()}`}>{status}</span>
        {server.statusReason ? <span className="reason">{shown(server.statusReason)}</span> : null}
        <span className="since" title={isoTime(server.statusChangeTime)}>
          since {ago(server.statusChangeTime)}
        </span>
      </td>
      <AgentCells serverId={server.id} />
    </>
  );
}
