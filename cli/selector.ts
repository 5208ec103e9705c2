import { CliError } from "./errors.js";

/** One requirement of a label selector, as kubectl writes them: k=v, k!=v, k (present), !k (absent). */
type Requirement = { key: string; op: "=" | "!=" | "exists" | "absent"; value?: string };

export function parseSelector(text: string): Requirement[] {
  return text
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "")
    .map((part) => {
      let m = /^([^=!\s]+)\s*(!=|==|=)\s*([^=!\s]*)$/.exec(part);
      if (m) return { key: m[1] as string, op: m[2] === "!=" ? "!=" : "=", value: m[3] };
      m = /^(!?)([^=!\s]+)$/.exec(part);
      if (m) return { key: m[2] as string, op: m[1] ? "absent" : "exists" };
      throw CliError.usage(`--selector: "${part.slice(0, 60)}" is not k=v, k!=v, k or !k`);
    });
}

export function matches(requirements: Requirement[], labels: Record<string, string>): boolean {
  return requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    if (r.op === "exists") return has;
    if (r.op === "absent") return !has;
    if (r.op === "=") return labels[r.key] === r.value;
    return labels[r.key] !== r.value;
  });
}
