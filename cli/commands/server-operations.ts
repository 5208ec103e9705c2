import type { Argv } from "yargs";
import { AgentService } from "../../gen/axion/infrastructure/v1/agent_service_pb.js";
import {
  ConnectionOutcome,
  DeployKeyAction,
  type Server,
  ServerSchema,
  ServerService,
  TestServerConnectionResponseSchema,
} from "../../gen/axion/infrastructure/v1/server_service_pb.js";
import { type Api, api } from "../client.js";
import { globals, isJson } from "../context.js";
import { CliError } from "../errors.js";
import { followStarted } from "../operation-start.js";
import { enumName, messageJson, outside, printFields, printJson, statusText } from "../output.js";
import { resolveServer } from "../resolve.js";

type Start = (
  client: Api,
  id: string,
  argv: Record<string, unknown>,
) => Promise<{ operation?: import("../../gen/axion/infrastructure/v1/operation_service_pb.js").Operation }>;

/**
 * What a reinstall needs that the server lacks, said in this command's terms (the API refuses it too, in
 * its field names): exit 1 before anything starts.
 */
function requireProviderLink(server: Server): void {
  const link = `axion servers update ${server.name} --provider ACCOUNT --provider-server-id ID`;
  if (!server.providerAccountId) {
    throw CliError.failed(
      `${server.name} is linked to no provider account to rebuild through: link it with ${link} (accounts: axion providers list)`,
    );
  }
  if (!server.providerServerId) {
    throw CliError.failed(`${server.name} has no provider server id (its VPS at the provider): set it with ${link}`);
  }
}

const starts: { command: string; describe: string; options?: (c: Argv) => Argv; check?: (server: Server) => void; start: Start }[] = [
  {
    command: "configure <server>",
    describe: "Bootstrap a server: preflight, admin user, Docker, firewall, SSH hardening, deploy key",
    start: (c, id) => c.service(ServerService).configureServer({ id }),
  },
  {
    command: "deploy-key <server>",
    describe: "Add (or with --remove, remove) the orchestrator's deploy key",
    options: (c) => c.option("remove", { type: "boolean", default: false }),
    start: (c, id, argv) =>
      c.service(ServerService).setupDeployKey({ id, action: argv.remove ? DeployKeyAction.REMOVE : DeployKeyAction.ADD }),
  },
  {
    command: "recover <server>",
    describe: "Diagnose and fix disk use and a hung Docker",
    options: (c) =>
      c.option("threshold", { type: "number", describe: "disk use percent that triggers a cleanup (default: the service's)" }),
    start: (c, id, argv) =>
      c.service(ServerService).recoverServer({ id, diskThresholdPercent: (argv.threshold as number | undefined) ?? 0 }),
  },
  {
    command: "reinstall <server>",
    describe: "Rebuild the OS through the server's provider account (servers update --provider), then bootstrap",
    check: requireProviderLink,
    options: (c) => c.option("os", { type: "string", default: "", describe: "the provider's OS template (default: the service's)" }),
    start: (c, id, argv) => c.service(ServerService).reinstallServer({ id, os: argv.os as string }),
  },
  {
    command: "install-agent <server>",
    describe: "(Re)install the axion-agent",
    start: (c, id) => c.service(AgentService).installAgent({ id }),
  },
];

export function serverOperationCommands(y: Argv): Argv {
  let out = y.command(
    "test <server>",
    "Test the SSH connection (answers within seconds)",
    (c) => c.positional("server", { type: "string", demandOption: true }),
    async (argv) => {
      const client = api();
      const server = await resolveServer(client, argv.server);
      const r = await client.service(ServerService).testServerConnection({ id: server.id });
      const outcome = enumName(ConnectionOutcome, r.outcome, "CONNECTION_OUTCOME");
      if (isJson(argv)) printJson(messageJson(TestServerConnectionResponseSchema, r));
      else {
        const f = r.facts;
        printFields([
          ["server", server.name],
          ["outcome", statusText(outcome)],
          ["message", r.message || "-"],
          ["host key", r.hostKeyFingerprint || "-"],
          ...(f && outcome === "ok"
            ? ([
                ["os", f.osPrettyName || `${f.osId} ${f.osVersion}`],
                ["arch", f.arch],
                ["kernel", f.kernel],
                ["free on /", `${f.rootFreeMb} MB`],
                ["memory", `${f.memoryMb} MB`],
                ["docker", f.dockerVersion || "not installed"],
              ] as [string, string][])
            : []),
        ]);
      }
      if (r.outcome !== ConnectionOutcome.OK)
        throw CliError.failed(`connection test of ${server.name}: ${outcome}${r.message ? `: ${r.message}` : ""}`);
    },
  );
  for (const s of starts) {
    out = out.command(
      s.command,
      s.describe,
      (c) =>
        (s.options ?? ((x: Argv) => x))(
          c
            .positional("server", { type: "string", demandOption: true })
            .option("watch", { alias: "w", type: "boolean", default: false, describe: "show the steps live until it ends" }),
        ),
      async (argv) => {
        const client = api();
        const server = await resolveServer(client, argv.server as string);
        s.check?.(server);
        const r = await s.start(client, server.id, argv);
        await followStarted(client, r.operation, server.name, { ...globals(argv), watch: argv.watch as boolean });
      },
    );
  }
  return out.command(
    "accept-host-key <server>",
    "Pin a changed host key, after checking the host presents exactly this fingerprint",
    (c) =>
      c
        .positional("server", { type: "string", demandOption: true })
        .option("fingerprint", { type: "string", demandOption: true, describe: "SHA256:… as ssh-keygen -lf prints it" }),
    async (argv) => {
      const client = api();
      const server = await resolveServer(client, argv.server);
      const r = await client.service(ServerService).acceptHostKey({ id: server.id, expectedFingerprint: argv.fingerprint });
      if (isJson(argv)) return printJson({ server: r.server ? messageJson(ServerSchema, r.server) : null });
      process.stdout.write(`Host key of ${outside(server.name)} pinned: ${outside(r.server?.hostKeyFingerprint ?? "")}\n`);
    },
  );
}
