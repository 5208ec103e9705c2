import { ClusterService } from "../../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { type Server, ServerSchema, ServerService, ServerStatus } from "../../gen/axion/infrastructure/v1/server_service_pb.js";
import { api } from "../client.js";
import { commandBody } from "../command.js";
import { type GlobalOptions, globals, isJson } from "../context.js";
import { credentialFrom } from "../credentials.js";
import { CliError } from "../errors.js";
import { parseLabels } from "../labels.js";
import { enumName, labels, messageJson, printFields, printJson, printTable, statusText, time } from "../output.js";
import { allClusters, allServers, resolveCluster, resolveServer } from "../resolve.js";
import { metricsCommand } from "./metrics.js";
import { serverOperationCommands } from "./server-operations.js";

export const serverStatus = (s: Server) => enumName(ServerStatus, s.status, "SERVER_STATUS");

const statusNames = Object.keys(ServerStatus)
  .filter((k) => Number.isNaN(Number(k)) && k !== "UNSPECIFIED")
  .map((k) => k.toLowerCase());

function show(server: Server | undefined, clusterName: string, argv: GlobalOptions) {
  if (!server) return;
  if (argv.output === "json") return printJson({ server: messageJson(ServerSchema, server) });
  printFields([
    ["id", server.id],
    ["name", server.name],
    ["cluster", clusterName],
    ["address", `${server.sshUser}@${server.host}:${server.sshPort}`],
    ["auth", enumName({ 0: "unspecified", 1: "private_key", 2: "password" }, server.authMethod, "")],
    ["status", `${statusText(serverStatus(server))}${server.statusReason ? ` (${server.statusReason})` : ""}`],
    ["status since", time(server.statusChangeTime)],
    ["labels", labels(server.labels)],
    ["host key", server.hostKeyFingerprint || "-"],
    ["provider", server.provider ? `${server.provider} ${server.providerServerId}` : "-"],
    ["created", time(server.createTime)],
  ]);
}

const credentialOptions = {
  "key-file": { type: "string", describe: "SSH private key file (passphrase: AXION_KEY_PASSPHRASE or a prompt)" },
  "password-stdin": { type: "boolean", describe: "read the SSH password from stdin" },
} as const;
const labelOption = { type: "string", array: true, describe: "key=value (repeatable)" } as const;

export const servers = commandBody((t) => {
  let s = t
    .command(
      "list",
      "List servers",
      (c) =>
        c
          .option("cluster", { type: "string", describe: "only this cluster (name or id)" })
          .option("selector", { alias: "l", type: "string", describe: "label selector: role=web,env!=dev,tier in (a,b),!legacy" })
          .option("status", {
            type: "string",
            array: true,
            choices: statusNames,
            describe: "only servers in these statuses (repeatable)",
          }),
      async (argv) => {
        const client = api();
        const clusterId = argv.cluster ? (await resolveCluster(client, argv.cluster)).id : "";
        const statuses = (argv.status ?? []).map((name) => ServerStatus[name.toUpperCase() as keyof typeof ServerStatus] as ServerStatus);
        const [shown, clusters] = await Promise.all([
          allServers(client, { clusterId, statuses, selector: argv.selector ?? "" }),
          allClusters(client),
        ]);
        const names = new Map(clusters.map((c) => [c.id, c.name]));
        if (isJson(argv)) return printJson({ servers: shown.map((srv) => messageJson(ServerSchema, srv)) });
        printTable(
          ["NAME", "CLUSTER", "ADDRESS", "STATUS", "LABELS", "ID"],
          shown.map((srv) => [
            srv.name,
            names.get(srv.clusterId) ?? srv.clusterId,
            `${srv.host}:${srv.sshPort}`,
            statusText(serverStatus(srv)),
            labels(srv.labels),
            srv.id,
          ]),
        );
      },
    )
    .command(
      "get <server>",
      "Show a server (name or id)",
      (c) => c.positional("server", { type: "string", demandOption: true }),
      async (argv) => {
        const client = api();
        const server = await resolveServer(client, argv.server);
        const cluster = await client.service(ClusterService).getCluster({ id: server.clusterId });
        show(server, cluster.cluster?.name ?? server.clusterId, globals(argv));
      },
    )
    .command(
      "add <name>",
      "Add a server to a cluster",
      (c) =>
        c
          .positional("name", { type: "string", demandOption: true })
          .option("cluster", { type: "string", demandOption: true, describe: "name or id" })
          .option("host", { type: "string", demandOption: true, describe: "IP address or DNS name" })
          .option("port", { type: "number", default: 22 })
          .option("user", { type: "string", default: "root", describe: "SSH user" })
          .options(credentialOptions)
          .option("label", labelOption),
      async (argv) => {
        const client = api();
        const credential = await credentialFrom(argv);
        if (!credential) throw CliError.usage("give --key-file PATH or --password-stdin");
        const cluster = await resolveCluster(client, argv.cluster);
        const r = await client.service(ServerService).createServer({
          clusterId: cluster.id,
          name: argv.name,
          host: argv.host,
          sshPort: argv.port,
          sshUser: argv.user,
          credential,
          labels: parseLabels(argv.label),
        });
        show(r.server, cluster.name, globals(argv));
      },
    )
    .command(
      "update <server>",
      "Change a server (--label replaces all labels)",
      (c) =>
        c
          .positional("server", { type: "string", demandOption: true })
          .option("name", { type: "string" })
          .option("cluster", { type: "string", describe: "move to this cluster (name or id)" })
          .option("host", { type: "string" })
          .option("port", { type: "number" })
          .option("user", { type: "string" })
          .options(credentialOptions)
          .option("label", labelOption),
      async (argv) => {
        const client = api();
        const server = await resolveServer(client, argv.server);
        const cluster = argv.cluster ? await resolveCluster(client, argv.cluster) : undefined;
        const r = await client.service(ServerService).updateServer({
          id: server.id,
          name: argv.name,
          clusterId: cluster?.id,
          host: argv.host,
          sshPort: argv.port,
          sshUser: argv.user,
          credential: await credentialFrom(argv),
          labels: argv.label ? { entries: parseLabels(argv.label) } : undefined,
        });
        const clusterName =
          cluster?.name ?? (await client.service(ClusterService).getCluster({ id: server.clusterId })).cluster?.name ?? "";
        show(r.server, clusterName, globals(argv));
      },
    )
    .command(
      "delete <server>",
      "Delete a server",
      (c) => c.positional("server", { type: "string", demandOption: true }),
      async (argv) => {
        const client = api();
        const server = await resolveServer(client, argv.server);
        await client.service(ServerService).deleteServer({ id: server.id });
        if (isJson(argv)) return printJson({ deleted: { id: server.id, name: server.name } });
        process.stdout.write(`Server ${server.name} deleted\n`);
      },
    );
  s = serverOperationCommands(s);
  s = metricsCommand(s);
  return s.demandCommand(1, "name a servers command (axion servers --help)");
});
