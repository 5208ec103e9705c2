import yargs, { type Argv } from "yargs";
import { apiUrl } from "./api-url.js";
import { chosen, topCommands } from "./catalogue.js";
import type { CommandBody } from "./command.js";
import { completeWithNames, completionCommand, selectCompletionShell } from "./commands/completion.js";
import { CliError, Exit } from "./errors.js";
import { refuseSecretArguments } from "./secrets.js";

/** The parser; `bodies` holds the loaded commands, every other one is listed by name and description only. */
export function parser(argv: string[], bodies: Map<string, CommandBody>): Argv {
  const root = yargs(argv);
  let y: Argv = root
    .scriptName("axion")
    .usage("$0 <command> [options]\n\nThe Axion Infra command line: inventory, provisioning and fleet rollouts over the API.")
    .option("output", {
      alias: "o",
      choices: ["table", "json"] as const,
      default: "table" as const,
      describe: "table for people, json (one document, snake_case fields) for scripts",
      global: true,
    })
    .completion("completion-script", false, completeWithNames(root))
    // A completion that asks the API answers after yargs' checks, which must not refuse its key meanwhile.
    .strict(!argv.includes("--get-yargs-completions"))
    .demandCommand(1, "name a command (axion --help lists them)")
    .help()
    .alias("h", "help")
    .version(false)
    .wrap(Math.min(120, process.stdout.columns || 100))
    .epilogue(
      "Exit codes: 0 ok, 1 the operation failed or cannot start, 2 usage error, 3 not found or not allowed, 4 the API cannot be reached.\nAXION_API and AXION_TOKEN override the config file written by axion login.",
    )
    .fail((message, error) => {
      throw error ?? CliError.usage(message);
    });
  // A completion that waits for names from the API answers (and exits) after yargs has gone on to the
  // command: it must never run.
  if (argv.includes("--get-yargs-completions")) y = y.middleware(() => new Promise<never>(() => {}), true);
  for (const top of topCommands) {
    const body = bodies.get(top.command);
    y = y.command([top.command, ...(top.aliases ?? [])], top.describe, body?.builder ?? {}, body?.handler);
  }
  return completionCommand(y);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  try {
    refuseSecretArguments(argv);
    selectCompletionShell(argv);
    const bodies = new Map(await Promise.all(chosen(argv).map(async (c) => [c.command, await c.load()] as const)));
    await parser(argv, bodies).parseAsync();
  } catch (error) {
    // Loaded only now: it needs the Connect runtime, which --help and usage errors do without.
    const { describeError } = await import("./error-report.js");
    const { message, exitCode } = describeError(error, apiUrl());
    process.stderr.write(`axion: ${message}\n`);
    process.exitCode = exitCode;
    return;
  }
  process.exitCode ??= Exit.ok;
}

await main();
