import type { Format } from "./output.js";

/** Options every command accepts. */
export interface GlobalOptions {
  output: Format;
}
