import type { DescEnum, DescField, DescMessage } from "@bufbuild/protobuf";
import { enumChoices, type InputProblem } from "./exact-input-json.js";

/**
 * A decoded request checked for what the binary decoder keeps instead of refusing: fields the
 * message does not declare (kept as `$unknown`), enum numbers the enum does not declare (proto3
 * enums are open) and the UNSPECIFIED zero inside a list (a filter of "unspecified" means nothing).
 * The same for every protocol, so a typo is refused whether it came as JSON or as protobuf.
 */

type Fields = Record<string, unknown> & { $unknown?: { no: number }[] };

const join = (path: string, name: string) => (path ? `${path}.${name}` : name);

export function messageInputProblem(desc: DescMessage, message: object, path = ""): InputProblem | undefined {
  const fields = message as Fields;
  const unknown = fields.$unknown?.[0];
  if (unknown) return { field: join(path, String(unknown.no)), message: `is not a field of ${desc.name} (unknown field number)` };
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
