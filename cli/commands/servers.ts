import { ClusterService } from "../../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { ProviderAccountService } from "../../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import { type Server, ServerSchema, ServerService, ServerStatus } from "../../gen/axion/infrastructure/v1/server_service_pb.js";
import { type Api, api } from "../client.js";
import { commandBody } from "../command.js";
import { type GlobalOptions, globals, isJson } from "../context.js";
import { becomePasswordFrom, credentialFrom } from "../credentials.js";
import { CliError } from "../errors.js";
import { parseLabels } from "../labels.js";
import { enumName, labels, messageJson, outside, printFields, printJson, printTable, statusText, time } from "../output.js";
import { resolveProviderAccount } from "../provider-accounts.js";
import { allClusters, allServers, resolveCluster, resolveServer } from "../resolve.js";
import { metricsCommand } from "./metrics.js";
import { serverOperationCommands } from "./server-operations.js";

export const serverStatus = (s: Server) => enumName(ServerStatus, s.status, "SERVER_STATUS");

const statusNames = Object.keys(ServerStatus)
  .filter((k) => Number.isNaN(Number(k)) && k !== "UNSPECIFIED")
  .map((k) => k.toLowerCase());

/** "t4v (time4vps), VPS 101": the account the server is rebuilt through, and its VPS there. */
function providerLink(server: Server, accountName: string | undefined): string {
  const vps = server.providerServerId ? `VPS ${server.providerServerId}` : "no VPS id";
  if (server.providerAccountId) return `${accountName ?? server.providerAccountId} (${server.provider}), ${vps}`;
  return server.provider || server.providerServerId ? `${server.provider || "no account"}, ${vps}` : "-";
}

function show(server: Server | undefined, clusterName: string, argv: GlobalOptions, accountName?: string) {
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
    ["become", server.becomePasswordSet ? "password set" : "-"],
    ["host key", server.hostKeyFingerprint || "-"],
    ["provider", providerLink(server, accountName)],
    ["created", time(server.createTime)],
  ]);
}

const credentialOptions = {
  "key-file": { type: "string", describe: "SSH private key file (passphrase: AXION_KEY_PASSPHRASE or a prompt)" },
  "password-stdin": { type: "boolean", describe: "read the SSH password from stdin" },
  "become-password-stdin": { type: "boolean", describe: "read the password sudo asks the SSH user for from stdin" },
  "ask-become-password": { type: "boolean", describe: "prompt for the password sudo asks the SSH user for" },
} as const;
const labelOption = { type: "string", array: true, describe: "key=value (repeatable)" } as const;
const providerOptions = {
  provider: { type: "string", describe: "the provider account (name or id) servers reinstall rebuilds through" },
  "provider-server-id": { type: "string", describe: "the server's id at that provider (Time4VPS: the numeric VPS id)" },
} as const;

/**
 * The provider link of `--provider ACCOUNT --provider-server-id ID` as request fields; `--no-provider` (or
 * `--provider ""`) unlinks: the API clears the account and the VPS id when both are empty.
 */
async function providerFields(client: Api, argv: { provider?: string; "provider-server-id"?: string }) {
  const provider = argv.provider as string | false | undefined;
  if (provider === false || provider === "") {
    if (argv["provider-server-id"]) throw CliError.usage("--no-provider unlinks the server: give no --provider-server-id with it");
    return { fields: { providerAccountId: "", providerServerId: "" }, accountName: undefined };
  }
  const account = provider === undefined ? undefined : await resolveProviderAccount(client, provider);
  return { fields: { providerAccountId: account?.id, providerServerId: argv["provider-server-id"] }, accountName: account?.name };
}

/** The name of the account a server names, for showing it; none when it names none. */
async function accountNameOf(client: Api, server: Server | undefined): Promise<string | undefined> {
  if (!server?.providerAccountId) return undefined;
  return (await client.service(ProviderAccountService).getProviderAccount({ id: server.providerAccountId })).providerAccount?.name;
}

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
        const [cluster, accountName] = await Promise.all([
          client.service(ClusterService).getCluster({ id: server.clusterId }),
          accountNameOf(client, server),
        ]);
        show(server, cluster.cluster?.name ?? server.clusterId, globals(argv), accountName);
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
          .option("label", labelOption)
          .options(providerOptions),
      async (argv) => {
        const client = api();
        const credential = await credentialFrom(argv);
        if (!credential) throw CliError.usage("give --key-file PATH or --password-stdin");
        const cluster = await resolveCluster(client, argv.cluster);
        const link = await providerFields(client, argv);
        const r = await client.service(ServerService).createServer({
          ...link.fields,
          clusterId: cluster.id,
          name: argv.name,
          host: argv.host,
          sshPort: argv.port,
          sshUser: argv.user,
          credential,
          becomePassword: (await becomePasswordFrom(argv)) ?? "",
          labels: parseLabels(argv.label),
        });
        show(r.server, cluster.name, globals(argv), link.accountName);
      },
    )
    .command(
      "update <server>",
      "Change a server (--label replaces all labels; --no-provider unlinks it from its provider account)",
      (c) =>
        c
          .positional("server", { type: "string", demandOption: true })
          .option("name", { type: "string" })
          .option("cluster", { type: "string", describe: "move to this cluster (name or id)" })
          .option("host", { type: "string" })
          .option("port", { type: "number" })
          .option("user", { type: "string" })
          .options(credentialOptions)
          .option("clear-become-password", { type: "boolean", describe: "forget the stored become password" })
          .option("label", labelOption)
          .options(providerOptions),
      async (argv) => {
        const client = api();
        const becomePassword = await becomePasswordFrom(argv);
        const server = await resolveServer(client, argv.server);
        const cluster = argv.cluster ? await resolveCluster(client, argv.cluster) : undefined;
        const link = await providerFields(client, argv);
        const r = await client.service(ServerService).updateServer({
          ...link.fields,
          id: server.id,
          name: argv.name,
          clusterId: cluster?.id,
          host: argv.host,
          sshPort: argv.port,
          sshUser: argv.user,
          credential: await credentialFrom(argv),
          becomePassword,
          labels: argv.label ? { entries: parseLabels(argv.label) } : undefined,
        });
        const clusterName =
          cluster?.name ?? (await client.service(ClusterService).getCluster({ id: server.clusterId })).cluster?.name ?? "";
        show(r.server, clusterName, globals(argv), link.accountName ?? (await accountNameOf(client, r.server)));
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
        process.stdout.write(`Server ${outside(server.name)} deleted\n`);
      },
    );
  s = serverOperationCommands(s);
  s = metricsCommand(s);
  return s.demandCommand(1, "name a servers command (axion servers --help)");
});
