import { type Operation, OperationSchema } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import type { Api } from "./client.js";
import type { GlobalOptions } from "./context.js";
import { CliError } from "./errors.js";
import { messageJson, outside, printJson } from "./output.js";
import { exitFor, finalOperationState, operationKind, render, watchOperation } from "./watch.js";

/** After an operation started: its id (or, with --watch, its steps live until it ends; exit 1 unless it succeeded). */
export async function followStarted(
  client: Api,
  started: Operation | undefined,
  serverName: string,
  argv: GlobalOptions & { watch?: boolean },
): Promise<void> {
  if (!started) throw CliError.failed("the API answered without an operation");
  let op = started;
  if (argv.watch) {
    if (argv.output === "json") {
      // Scripts get the final state only: one document.
      op = (await finalOperationState(client, op.id)) ?? op;
    } else {
      op = await watchOperation(client, op.id, serverName);
    }
  }
  if (argv.output === "json") printJson({ operation: messageJson(OperationSchema, op) });
  else if (!argv.watch) {
    process.stdout.write(
      `${operationKind(op)} started on ${outside(serverName)}: operation ${op.id}\nFollow it with: axion ops watch ${op.id}\n`,
    );
  }
  exitFor(op);
}

export { render };
