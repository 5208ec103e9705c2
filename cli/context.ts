import type { Format } from "./output.js";

/** Options every command accepts (the global -o/--output). */
export interface GlobalOptions {
  output: Format;
}

/** The global options of a command's parsed arguments (yargs types each command's own options only). */
export const globals = (argv: object): GlobalOptions => ({ output: (argv as { output?: Format }).output === "json" ? "json" : "table" });
export const isJson = (argv: object): boolean => globals(argv).output === "json";
