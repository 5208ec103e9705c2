import type { Argv } from "yargs";

/**
 * yargs picks the script's flavour from $SHELL when it is built; `axion completion zsh` must print the
 * zsh script even from bash, so the shell named on the command line is set before yargs starts.
 */
export function selectCompletionShell(argv: string[]): void {
  if (argv[0] !== "completion") return;
  if (argv[1] === "zsh") process.env.SHELL = "/bin/zsh";
  else if (argv[1] === "bash") {
    process.env.SHELL = "/bin/bash";
    delete process.env.ZSH_NAME;
  }
}

export function completionCommand(y: Argv): Argv {
  return y.command(
    "completion <shell>",
    "Print the shell completion script: source <(axion completion bash), or add it to ~/.zshrc",
    (c) => c.positional("shell", { choices: ["bash", "zsh"] as const, demandOption: true }),
    (argv) => {
      // yargs' typings omit the arguments: the program name and the completion command.
      (y.showCompletionScript as unknown as (name: string, command: string) => void)("axion", `completion ${argv.shell}`);
    },
  );
}
