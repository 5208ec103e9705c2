import type { ArgumentsCamelCase, Argv } from "yargs";

/** What a top-level command adds once it is chosen: its options or subcommands, and its handler (none for a group). */
export interface CommandBody {
  builder: (y: Argv) => Argv;
  handler?: (argv: ArgumentsCamelCase) => void | Promise<void>;
}

/** A command's body, its handler typed by what its builder declares. */
export function commandBody<U>(
  builder: (y: Argv) => Argv<U>,
  handler?: (argv: ArgumentsCamelCase<U>) => void | Promise<void>,
): CommandBody {
  return { builder, handler } as unknown as CommandBody;
}
