import yargs, { type Argv } from "yargs";
import { apiUrl } from "./client.js";
import { agentsCommand } from "./commands/agents.js";
import { clustersCommand } from "./commands/clusters.js";
import { completionCommand, selectCompletionShell } from "./commands/completion.js";
import { loginCommands } from "./commands/login.js";
import { opsCommand } from "./commands/ops.js";
import { rolloutCommand } from "./commands/rollout.js";
import { serversCommand } from "./commands/servers.js";
import { tokensCommand } from "./commands/tokens.js";
import { CliError, describeError, Exit } from "./errors.js";
import { refuseSecretArguments } from "./secrets.js";

export function parser(argv: string[]): Argv {
  let y: Argv = yargs(argv)
    .scriptName("axion")
    .usage("$0 <command> [options]\n\nThe Axion Infra command line: inventory, provisioning and fleet rollouts over the API.")
    .option("output", {
      alias: "o",
      choices: ["table", "json"] as const,
      default: "table" as const,
      describe: "table for people, json (one document, snake_case fields) for scripts",
      global: true,
    })
    .completion("completion-script", false)
    .strict()
    .demandCommand(1, "name a command (axion --help lists them)")
    .help()
    .alias("h", "help")
    .version(false)
    .wrap(Math.min(120, process.stdout.columns || 100))
    .epilogue(
      "Exit codes: 0 ok, 1 the operation failed, 2 usage error, 3 not found or not allowed, 4 the API cannot be reached.\nAXION_API and AXION_TOKEN override the config file written by axion login.",
    )
    .fail((message, error) => {
      throw error ?? CliError.usage(message);
    });
  for (const add of [
    loginCommands,
    tokensCommand,
    clustersCommand,
    serversCommand,
    opsCommand,
    rolloutCommand,
    agentsCommand,
    completionCommand,
  ])
    y = add(y);
  return y;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  try {
    refuseSecretArguments(argv);
    selectCompletionShell(argv);
    await parser(argv).parseAsync();
  } catch (error) {
    const { message, exitCode } = describeError(error, apiUrl());
    process.stderr.write(`axion: ${message}\n`);
    process.exitCode = exitCode;
    return;
  }
  process.exitCode ??= Exit.ok;
}

await main();
