import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Operation, OperationSchema, OperationService } from "../../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ServerService } from "../../gen/axion/infrastructure/v1/server_service_pb.js";
import { type Api, api } from "../client.js";
import { commandBody } from "../command.js";
import { isJson } from "../context.js";
import { CliError } from "../errors.js";
import { duration, messageJson, outside, printJson, printTable, statusText, time } from "../output.js";
import { resolveServer } from "../resolve.js";
import { exitFor, finalOperationState, operationKind, operationStatus, render, watchOperation } from "../watch.js";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An operation by its id, or a server's (name or id) latest operation. */
async function resolveOperation(client: Api, handle: string): Promise<{ op: Operation; serverName: string }> {
  if (uuid.test(handle)) {
    const op = (
      await client
        .service(OperationService)
        .getOperation({ id: handle.toLowerCase() })
        .catch(() => undefined)
    )?.operation;
    if (op) {
      const server = op.serverId
        ? (
            await client
              .service(ServerService)
              .getServer({ id: op.serverId })
              .catch(() => undefined)
          )?.server
        : undefined;
      return { op, serverName: server?.name ?? (op.serverId || "-") };
    }
  }
  const server = await resolveServer(client, handle).catch((error) => {
    throw uuid.test(handle) ? CliError.notFound(`no operation or server with id ${handle}`) : error;
  });
  const latest = (await client.service(OperationService).listOperations({ serverId: server.id, pageSize: 1 })).operations[0];
  if (!latest) throw CliError.notFound(`server ${server.name} has no operations`);
  return { op: latest, serverName: server.name };
}

const took = (op: Operation) =>
  op.startTime
    ? duration((op.finishTime ? timestampDate(op.finishTime).getTime() : Date.now()) - timestampDate(op.startTime).getTime())
    : "-";

const handleArg = {
  type: "string",
  demandOption: true,
  describe: "operation id, or a server (name or id) for its latest operation",
} as const;

export const ops = commandBody((t) =>
  t
    .command(
      "list <server>",
      "A server's operations, newest first",
      (c) => c.positional("server", { type: "string", demandOption: true }).option("limit", { type: "number", default: 20 }),
      async (argv) => {
        const client = api();
        const server = await resolveServer(client, argv.server);
        const ops = (
          await client.service(OperationService).listOperations({ serverId: server.id, pageSize: Math.min(500, Math.max(1, argv.limit)) })
        ).operations;
        if (isJson(argv)) return printJson({ operations: ops.map((o) => messageJson(OperationSchema, o)) });
        printTable(
          ["ID", "KIND", "STATUS", "STARTED", "TOOK", "STEP / ERROR"],
          ops.map((o) => [
            o.id,
            operationKind(o),
            statusText(operationStatus(o)),
            time(o.startTime),
            took(o),
            outside(o.error || o.currentStep).slice(0, 80),
          ]),
          "(none)",
          // ops get takes a whole operation id (or a server).
          { keep: ["ID"] },
        );
      },
    )
    .command(
      "get <operation>",
      "Show an operation and its steps",
      (c) => c.positional("operation", handleArg),
      async (argv) => {
        const { op, serverName } = await resolveOperation(api(), argv.operation);
        if (isJson(argv)) return printJson({ operation: messageJson(OperationSchema, op) });
        process.stdout.write(`${render(op, serverName).join("\n")}\n`);
      },
    )
    .command(
      "watch <operation>",
      "Follow an operation live until it ends (Ctrl-C stops watching, not the operation)",
      (c) => c.positional("operation", handleArg),
      async (argv) => {
        const client = api();
        const { op, serverName } = await resolveOperation(client, argv.operation);
        let final = op;
        if (isJson(argv)) {
          final = (await finalOperationState(client, op.id)) ?? final;
          printJson({ operation: messageJson(OperationSchema, final) });
        } else {
          final = await watchOperation(client, op.id, serverName);
        }
        exitFor(final);
      },
    )
    .command(
      "cancel <operation>",
      "Cancel a running operation (its remote commands are stopped)",
      (c) => c.positional("operation", handleArg),
      async (argv) => {
        const client = api();
        const { op } = await resolveOperation(client, argv.operation);
        const r = await client.service(OperationService).cancelOperation({ id: op.id });
        const after = r.operation ?? op;
        if (isJson(argv)) return printJson({ operation: messageJson(OperationSchema, after) });
        process.stdout.write(`Operation ${outside(op.id)}: ${operationStatus(after)}\n`);
      },
    )
    .demandCommand(1, "name an ops command: list, get, watch, cancel"),
);
