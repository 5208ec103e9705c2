import { type Cluster, ClusterSchema, ClusterService } from "../../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { api } from "../client.js";
import { commandBody } from "../command.js";
import { type GlobalOptions, globals, isJson } from "../context.js";
import { parseLabels } from "../labels.js";
import { labels, messageJson, outside, printFields, printJson, printTable, time } from "../output.js";
import { allClusters, resolveCluster } from "../resolve.js";

function show(cluster: Cluster | undefined, argv: GlobalOptions) {
  if (!cluster) return;
  if (argv.output === "json") return printJson({ cluster: messageJson(ClusterSchema, cluster) });
  printFields([
    ["id", cluster.id],
    ["name", cluster.name],
    ["description", cluster.description || "-"],
    ["labels", labels(cluster.labels)],
    ["servers", String(cluster.serverCount)],
    ["created", time(cluster.createTime)],
    ["updated", time(cluster.updateTime)],
  ]);
}

const labelOption = { type: "string", array: true, describe: "key=value (repeatable)" } as const;

export const clusters = commandBody((t) =>
  t
    .command(
      "list",
      "List clusters",
      (c) => c,
      async (argv) => {
        const clusters = await allClusters(api());
        if (isJson(argv)) return printJson({ clusters: clusters.map((c) => messageJson(ClusterSchema, c)) });
        printTable(
          ["NAME", "ID", "SERVERS", "LABELS", "DESCRIPTION"],
          clusters.map((c) => [c.name, c.id, String(c.serverCount), labels(c.labels), c.description]),
        );
      },
    )
    .command(
      "get <cluster>",
      "Show a cluster (name or id)",
      (c) => c.positional("cluster", { type: "string", demandOption: true }),
      async (argv) => show(await resolveCluster(api(), argv.cluster), globals(argv)),
    )
    .command(
      "create <name>",
      "Create a cluster",
      (c) =>
        c
          .positional("name", { type: "string", demandOption: true })
          .option("description", { type: "string", default: "" })
          .option("label", labelOption),
      async (argv) => {
        const r = await api()
          .service(ClusterService)
          .createCluster({ name: argv.name, description: argv.description, labels: parseLabels(argv.label) });
        show(r.cluster, globals(argv));
      },
    )
    .command(
      "update <cluster>",
      "Change a cluster's name, description or labels (--label replaces all labels)",
      (c) =>
        c
          .positional("cluster", { type: "string", demandOption: true })
          .option("name", { type: "string" })
          .option("description", { type: "string" })
          .option("label", labelOption),
      async (argv) => {
        const client = api();
        const cluster = await resolveCluster(client, argv.cluster);
        const r = await client.service(ClusterService).updateCluster({
          id: cluster.id,
          name: argv.name,
          description: argv.description,
          labels: argv.label ? { entries: parseLabels(argv.label) } : undefined,
        });
        show(r.cluster, globals(argv));
      },
    )
    .command(
      "delete <cluster>",
      "Delete a cluster (it must have no servers)",
      (c) => c.positional("cluster", { type: "string", demandOption: true }),
      async (argv) => {
        const client = api();
        const cluster = await resolveCluster(client, argv.cluster);
        await client.service(ClusterService).deleteCluster({ id: cluster.id });
        if (isJson(argv)) return printJson({ deleted: { id: cluster.id, name: cluster.name } });
        process.stdout.write(`Cluster ${outside(cluster.name)} deleted\n`);
      },
    )
    .demandCommand(1, "name a clusters command: list, get, create, update, delete"),
);
