import type { DescEnum, DescField, DescMessage } from "@bufbuild/protobuf";
import { enumChoices, type InputProblem } from "./exact-input-json.js";

/**
 * A decoded request checked for what the binary decoder keeps instead of refusing: fields the
 * message does not declare (kept as `$unknown`), enum numbers the enum does not declare (proto3
 * enums are open), the UNSPECIFIED zero inside a list (a filter of "unspecified" means nothing),
 * and Timestamps and Durations outside the range their JSON form allows. The same for every
 * protocol, so a typo is refused whether it came as JSON or as protobuf.
 */

type Fields = Record<string, unknown> & { $unknown?: { no: number }[] };

const join = (path: string, name: string) => (path ? `${path}.${name}` : name);

export function messageInputProblem(desc: DescMessage, message: object, path = ""): InputProblem | undefined {
  const fields = message as Fields;
  const unknown = fields.$unknown?.[0];
  if (unknown) return { field: join(path, String(unknown.no)), message: `is not a field of ${desc.name} (unknown field number)` };
  const range = wellKnownRangeProblem(desc, fields, path);
  if (range !== undefined) return range ?? undefined;
  for (const field of desc.fields) {
    const problem = fieldProblem(field, fieldValue(field, fields), join(path, field.name));
    if (problem) return problem;
  }
  return undefined;
}

function fieldValue(field: DescField, fields: Fields): unknown {
  if (!field.oneof) return fields[field.localName];
  const chosen = fields[field.oneof.localName] as { case?: string; value?: unknown } | undefined;
  return chosen?.case === field.localName ? chosen.value : undefined;
}

function fieldProblem(field: DescField, value: unknown, path: string): InputProblem | undefined {
  if (value === undefined) return undefined;
  switch (field.fieldKind) {
    case "enum":
      return declared(field.enum, value as number) ? undefined : undeclared(field.enum, value as number, path);
    case "message":
      return messageInputProblem(field.message, value as object, path);
    case "list":
      for (const [i, item] of (value as unknown[]).entries()) {
        const at = `${path}[${i}]`;
        if (field.listKind === "enum") {
          if (item === 0) return { field: at, message: `must be a value, not ${field.enum.values[0]?.name}: ${enumChoices(field.enum)}` };
          if (!declared(field.enum, item as number)) return undeclared(field.enum, item as number, at);
        }
        if (field.listKind === "message") {
          const problem = messageInputProblem(field.message, item as object, at);
          if (problem) return problem;
        }
      }
      return undefined;
    case "map":
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
        const at = `${path}[${JSON.stringify(key).slice(0, 34)}]`;
        if (field.mapKind === "enum" && !declared(field.enum, item as number)) return undeclared(field.enum, item as number, at);
        if (field.mapKind === "message") {
          const problem = messageInputProblem(field.message, item as object, at);
          if (problem) return problem;
        }
      }
      return undefined;
    default:
      return undefined;
  }
}

const declared = (desc: DescEnum, value: number) => desc.values.some((v) => v.number === value);

function undeclared(desc: DescEnum, value: number, path: string): InputProblem {
  return { field: path, message: `${value} is not a ${desc.name}: ${enumChoices(desc)}` };
}

const TIMESTAMP_MIN_SECONDS = -62135596800n; // 0001-01-01T00:00:00Z
const TIMESTAMP_MAX_SECONDS = 253402300799n; // 9999-12-31T23:59:59Z
const DURATION_MAX_SECONDS = 315576000000n; // 10,000 years

function wellKnownRangeProblem(desc: DescMessage, fields: Fields, path: string): InputProblem | null | undefined {
  const seconds = BigInt((fields.seconds as bigint | undefined) ?? 0n);
  const nanos = Number(fields.nanos ?? 0);
  if (desc.typeName === "google.protobuf.Timestamp") {
    if (seconds < TIMESTAMP_MIN_SECONDS || seconds > TIMESTAMP_MAX_SECONDS || nanos < 0 || nanos > 999_999_999) {
      return { field: path || "request", message: "must be a time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z" };
    }
    return null;
  }
  if (desc.typeName === "google.protobuf.Duration") {
    const sameSign = seconds === 0n || nanos === 0 || seconds > 0n === nanos > 0;
    if (seconds > DURATION_MAX_SECONDS || seconds < -DURATION_MAX_SECONDS || Math.abs(nanos) > 999_999_999 || !sameSign) {
      return { field: path || "request", message: `must be a duration of at most ${DURATION_MAX_SECONDS} seconds` };
    }
    return null;
  }
  return undefined;
}
