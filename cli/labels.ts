import { CliError } from "./errors.js";

/** `--label k=v` (repeatable) into a map. */
export function parseLabels(values: (string | number)[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of values ?? []) {
    const text = String(raw);
    const eq = text.indexOf("=");
    if (eq <= 0) throw CliError.usage(`--label must be key=value, not "${text.slice(0, 60)}"`);
    out[text.slice(0, eq)] = text.slice(eq + 1);
  }
  return out;
}
