import { counted } from "../../core/kernel/plural.js";
import { AgentService, GetAgentStatusResponseSchema } from "../../gen/axion/infrastructure/v1/agent_service_pb.js";
import { ServerStatus } from "../../gen/axion/infrastructure/v1/server_service_pb.js";
import { api } from "../client.js";
import { commandBody } from "../command.js";
import { isJson } from "../context.js";
import { ago, bytes, enumName, messageJson, printFields, printJson, statusText, time } from "../output.js";
import { resolveServer } from "../resolve.js";

export const agents = commandBody((t) =>
  t
    .command(
      "status <server>",
      "Whether the agent is installed and reporting, with its latest metrics",
      (c) => c.positional("server", { type: "string", demandOption: true }),
      async (argv) => {
        const client = api();
        const server = await resolveServer(client, argv.server);
        const r = await client.service(AgentService).getAgentStatus({ id: server.id });
        if (isJson(argv)) return printJson(messageJson(GetAgentStatusResponseSchema, r));
        const m = r.latestMetrics;
        const info = r.info;
        printFields([
          ["server", server.name],
          ["status", statusText(enumName(ServerStatus, r.status, "SERVER_STATUS"))],
          ["installed", r.installed ? "yes" : "no"],
          [
            "agent",
            info ? `${info.agentVersion || "-"} on ${info.hostname} (${info.os}, ${info.arch}, ${counted(info.cpuCount, "CPU")})` : "-",
          ],
          ["registered", time(r.registeredTime)],
          ["last heartbeat", ago(r.lastHeartbeatTime)],
          ...(m
            ? ([
                ["cpu", `${m.cpuPercent.toFixed(1)} %`],
                ["memory", `${bytes(m.memoryUsedBytes)} of ${bytes(m.memoryTotalBytes)}`],
                ["load", `${m.load1.toFixed(2)} ${m.load5.toFixed(2)} ${m.load15.toFixed(2)}`],
                ...m.disks.map((d) => [`disk ${d.mount}`, `${bytes(d.usedBytes)} of ${bytes(d.totalBytes)}`] as [string, string]),
              ] as [string, string][])
            : []),
        ]);
      },
    )
    .demandCommand(1, "name an agents command: status"),
);
