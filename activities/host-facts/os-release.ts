import { hasUnsafeCharacters } from "../../core/kernel/text.js";
import { badAnswer, oneLine } from "./answer.js";

export interface OsRelease {
  id: string;
  versionId: string;
  prettyName: string;
}

/** A value as os-release(5) writes it: bare, or in double or single quotes with shell escapes. */
function unquote(value: string): string {
  const quoted = /^"(.*)"$/.exec(value) ?? /^'(.*)'$/.exec(value);
  return quoted ? (quoted[1] ?? "").replace(/\\(["\\`$])/g, "$1") : value;
}

/** `/etc/os-release`: ID, VERSION_ID and PRETTY_NAME, each bounded; the rest of the file is not read. */
export function osReleaseOf(raw: Buffer): OsRelease {
  const text = raw.toString("utf8");
  if (text.trim() === "") throw badAnswer("/etc/os-release", "no answer");
  if (hasUnsafeCharacters(text, { multiline: true }) || text.includes("\ufffd")) {
    throw badAnswer("/etc/os-release", "holds control characters or binary", text);
  }
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([A-Z_]{1,32})=(.*)$/.exec(line.trim());
    if (match?.[1] && !fields.has(match[1])) fields.set(match[1], unquote(match[2] ?? ""));
  }
  const field = (key: string, max: number, pattern: RegExp, what: string, required: boolean): string => {
    const value = fields.get(key) ?? "";
    if (value === "" && !required) return "";
    return oneLine(`/etc/os-release ${key}`, Buffer.from(value), max, pattern, what);
  };
  return {
    id: field("ID", 32, /^[a-z0-9._-]+$/, "an os-release ID", true),
    versionId: field("VERSION_ID", 32, /^[A-Za-z0-9._~-]+$/, "a version", false),
    prettyName: field("PRETTY_NAME", 100, /^[^\\`$]+$/, "a name", false),
  };
}
