import type { Argv } from "yargs";
import type { NameKind } from "../completion-names.js";

/**
 * yargs picks the script's flavour from $SHELL when it is built; `axion completion zsh` must print the
 * zsh script even from bash, so the shell named on the command line is set before yargs starts.
 */
export function selectCompletionShell(argv: string[]): void {
  if (argv[0] !== "completion") return;
  if (argv[1] === "zsh") process.env.SHELL = "/bin/zsh";
  else if (argv[1] === "bash" || argv[1] === "fish") {
    process.env.SHELL = "/bin/bash";
    delete process.env.ZSH_NAME;
  }
}

/** yargs has no fish script: this one asks the same `--get-yargs-completions` entry point as bash's. */
const fishScript = `# axion completion for fish: axion completion fish > ~/.config/fish/completions/axion.fish
function __axion_yargs_completions
    set -l words (commandline -opc) (commandline -ct)
    # plain words: with SHELL naming zsh yargs would add descriptions after a colon
    SHELL=fish axion --get-yargs-completions $words 2>/dev/null
end
complete -c axion -f -a '(__axion_yargs_completions)'
`;

export function completionCommand(y: Argv): Argv {
  return y.command(
    "completion <shell>",
    "Print the shell completion script: source <(axion completion bash), add it to ~/.zshrc, or axion completion fish > ~/.config/fish/completions/axion.fish",
    (c) => c.positional("shell", { choices: ["bash", "zsh", "fish"] as const, demandOption: true }),
    (argv) => {
      if (argv.shell === "fish") return void process.stdout.write(fishScript);
      // yargs' typings omit the arguments: the program name and the completion command.
      (y.showCompletionScript as unknown as (name: string, command: string) => void)("axion", `completion ${argv.shell}`);
    },
  );
}

/** The positionals and options whose values are names from the API. */
const namePositionals: Record<string, NameKind> = { server: "server", operation: "server", cluster: "cluster" };
const nameOptions: Record<string, NameKind> = { "--cluster": "cluster", "--servers": "server" };

interface YargsContext {
  getInternalMethods(): { getContext(): { commands: string[]; fullCommands: string[] } };
}

/**
 * yargs' completion (commands, options, choices), and where a server or cluster is expected (a `<server>`,
 * `<operation>` or `<cluster>` positional, `--cluster`, `--servers a,b,…`) the names from the API instead.
 */
export function completeWithNames(y: Argv) {
  return (
    current: string,
    argv: { _: (string | number)[] },
    defaults: (onCompleted: (error: Error | null, words: string[] | undefined) => void) => void,
    done: (words: string[]) => void,
  ): void => {
    defaults((_error, words) => {
      const kind = expected(y, current, argv);
      if (!kind) return done(words ?? []);
      // Loaded only here: a completion of commands and options needs no API client.
      void import("../completion-names.js").then(async ({ namesFor }) => {
        const head = current.includes(",") ? current.slice(0, current.lastIndexOf(",") + 1) : "";
        const last = current.slice(head.length);
        const chosen = new Set(head.split(","));
        done((await namesFor(kind)).filter((name) => name.startsWith(last) && !chosen.has(name)).map((name) => head + name));
      });
    });
  };
}

function expected(y: Argv, current: string, argv: { _: (string | number)[] }): NameKind | undefined {
  const typed = process.argv.slice(process.argv.indexOf("--get-yargs-completions") + 1);
  const option = nameOptions[typed.at(-2) ?? ""];
  if (option) return option === "cluster" && current.includes(",") ? undefined : option;
  if (current.startsWith("-")) return undefined;
  const context = (y as unknown as YargsContext).getInternalMethods().getContext();
  const positionals = [...(context.fullCommands.at(-1) ?? "").matchAll(/<(\w+)>/g)].map((m) => m[1] as string);
  // argv._: the program's name, the command words, the positionals typed before, the word being completed.
  const index = argv._.length - 1 - context.commands.length - 1;
  return namePositionals[positionals[index] ?? ""];
}
