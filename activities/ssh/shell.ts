/**
 * The one quoting helper: every value that reaches a remote shell passes through
 * `quote`, and commands are built with the `sh` template tag, which quotes every
 * interpolated value. Command text is never concatenated with input by hand.
 */

const fragmentBrand = Symbol("ShellFragment");

/** Command text that is already safe to hand to `sh -c`. */
export interface ShellFragment {
  readonly [fragmentBrand]: true;
  readonly text: string;
}

const fragment = (text: string): ShellFragment => ({ [fragmentBrand]: true, text });

const isFragment = (value: unknown): value is ShellFragment =>
  typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[fragmentBrand] === true;

/**
 * POSIX single-quoting: the value becomes exactly one word, whatever it holds.
 * The word is meant to stand on its own in the command, never inside "…". A
 * value starting with '-' is refused: a command would read it as an option, and
 * no caller needs one (options are written in the template itself).
 */
export function quote(value: string | number): string {
  const text = String(value);
  if (text.includes("\0")) throw new Error("a shell argument cannot contain a NUL byte");
  if (text.startsWith("-")) throw new Error("a shell argument cannot start with '-': a command would read it as an option");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

export type ShellValue = string | number | ShellFragment | readonly (string | number)[];

/** sh`useradd -m ${user}`: interpolated values are quoted; nested sh`` fragments are kept as written. */
export function sh(strings: TemplateStringsArray, ...values: ShellValue[]): ShellFragment {
  let text = strings[0] ?? "";
  values.forEach((value, i) => {
    if (isFragment(value)) text += value.text;
    else if (Array.isArray(value)) text += value.map(quote).join(" ");
    else text += quote(value as string | number);
    text += strings[i + 1] ?? "";
  });
  return fragment(text);
}

/** Joins fragments, e.g. steps of a script, with a separator that is itself fixed text. */
export function joinShell(parts: ShellFragment[], separator: "\n" | " && " | "; " = "\n"): ShellFragment {
  return fragment(parts.map((p) => p.text).join(separator));
}
