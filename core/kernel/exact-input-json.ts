import { type DescEnum, type DescField, type DescMessage, fromJson, type JsonValue, ScalarType } from "@bufbuild/protobuf";
import { excerpt } from "./text.js";

/**
 * A request's JSON text read against its message type before protobuf-es decodes it, because the
 * decoder is lenient where a typo must not be obeyed: "0x16", "1e1" and "22.0" are numbers to it.
 * Integer fields take plain decimal integers only (as a JSON number or a string), enum fields a
 * declared name or number, every key is a field of the message. The first problem names the field
 * (proto names, `services[0].name`) and quotes at most a short escaped excerpt of the value.
 */

export interface InputProblem {
  /** The field at fault, in proto naming; "request" for the body as a whole. */
  field: string;
  message: string;
}

const MAX_DEPTH = 64;
const decimalInteger = /^(0|-?[1-9][0-9]{0,19})$/;
const jsonNumberText = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;
const base64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const loneSurrogate = /\p{Cs}/u;

/** A JSON number as written: its text decides whether it is a plain decimal integer. */
class JsonNumber {
  constructor(readonly raw: string) {}
}
class JsonObject {
  readonly entries = new Map<string, Tree>();
  /** The first member name given twice (JSON.parse would keep the last silently). */
  duplicate?: string;
}
type Tree = null | boolean | string | JsonNumber | JsonObject | Tree[];

class TooDeep extends Error {}

/** The first problem of `text` as a JSON request of type `desc`, or undefined when protobuf-es may decode it. */
export function jsonInputProblem(desc: DescMessage, text: string): InputProblem | undefined {
  try {
    JSON.parse(text);
  } catch {
    return { field: "request", message: "is not valid JSON" };
  }
  let tree: Tree;
  try {
    tree = parseTree(text);
  } catch (error) {
    if (error instanceof TooDeep) return { field: "request", message: `is nested deeper than ${MAX_DEPTH} levels` };
    throw error;
  }
  return messageProblem(desc, tree, "");
}

/** A field's name in a message: a proto field name, or an unknown key shown short and escaped. */
export function keyShown(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(key) ? key : excerpt(key, 32);
}

const join = (path: string, name: string) => (path ? `${path}.${name}` : name);

const byName = new WeakMap<DescMessage, Map<string, DescField>>();
/** A message's fields by JSON name and by proto name, as protobuf-es accepts either. */
function fieldsByName(desc: DescMessage): Map<string, DescField> {
  let fields = byName.get(desc);
  if (!fields) {
    fields = new Map(desc.fields.flatMap((f) => [[f.jsonName, f] as const, [f.name, f] as const]));
    byName.set(desc, fields);
  }
  return fields;
}

function messageProblem(desc: DescMessage, value: Tree, path: string): InputProblem | undefined {
  if (!(value instanceof JsonObject)) return { field: path || "request", message: `must be a JSON object (${desc.name})` };
  if (value.duplicate !== undefined) return { field: join(path, keyShown(value.duplicate)), message: "is given more than once" };
  const seen = new Set<DescField>();
  const oneofs = new Map<string, string>();
  for (const [key, member] of value.entries) {
    const field = fieldsByName(desc).get(key);
    if (!field) return { field: join(path, keyShown(key)), message: `is not a field of ${desc.name}` };
    const at = join(path, field.name);
    if (seen.has(field)) return { field: at, message: "is given more than once (by its proto and its JSON name)" };
    seen.add(field);
    if (member === null) continue;
    if (field.oneof) {
      const other = oneofs.get(field.oneof.name);
      if (other)
        return { field: join(path, field.oneof.name), message: `takes one of its fields: ${other} and ${field.name} are both set` };
      oneofs.set(field.oneof.name, field.name);
    }
    const problem = fieldProblem(field, member, at);
    if (problem) return problem;
  }
  return undefined;
}

function fieldProblem(field: DescField, value: Tree, path: string): InputProblem | undefined {
  switch (field.fieldKind) {
    case "list": {
      if (!Array.isArray(value)) return { field: path, message: "must be a JSON array" };
      for (const [i, item] of value.entries()) {
        const at = `${path}[${i}]`;
        if (item === null) return { field: at, message: "must not be null" };
        const problem =
          field.listKind === "message"
            ? valueOfMessageProblem(field.message, item, at)
            : field.listKind === "enum"
              ? enumProblem(field.enum, item, at)
              : scalarProblem(field.scalar, item, at);
        if (problem) return problem;
      }
      return undefined;
    }
    case "map": {
      if (!(value instanceof JsonObject)) return { field: path, message: "must be a JSON object" };
      if (value.duplicate !== undefined) return { field: `${path}[${excerpt(value.duplicate, 32)}]`, message: "is given more than once" };
      for (const [key, item] of value.entries) {
        const at = `${path}[${excerpt(key, 32)}]`;
        const keyProblem = mapKeyProblem(field.mapKey, key, at);
        if (keyProblem) return keyProblem;
        if (item === null) return { field: at, message: "must not be null" };
        const problem =
          field.mapKind === "message"
            ? valueOfMessageProblem(field.message, item, at)
            : field.mapKind === "enum"
              ? enumProblem(field.enum, item, at)
              : scalarProblem(field.scalar, item, at);
        if (problem) return problem;
      }
      return undefined;
    }
    case "message":
      return valueOfMessageProblem(field.message, value, path);
    case "enum":
      return enumProblem(field.enum, value, path);
    case "scalar":
      return scalarProblem(field.scalar, value, path);
  }
}

/** The JSON forms of the well-known types (a Timestamp is an RFC 3339 string) are protobuf-es's to read. */
function valueOfMessageProblem(desc: DescMessage, value: Tree, path: string): InputProblem | undefined {
  if (!desc.typeName.startsWith("google.protobuf.")) return messageProblem(desc, value, path);
  try {
    fromJson(desc, plain(value));
    return undefined;
  } catch {
    return { field: path, message: wellKnownForm[desc.typeName] ?? `is not a valid ${desc.typeName}` };
  }
}

const wellKnownForm: Record<string, string> = {
  "google.protobuf.Timestamp": 'must be an RFC 3339 time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, e.g. "2026-12-01T10:00:00Z"',
  "google.protobuf.Duration": 'must be seconds with an "s" suffix, e.g. "90s" or "1.5s", at most 315576000000s',
};

const integerRange: Partial<Record<ScalarType, [bigint, bigint]>> = {
  [ScalarType.INT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SINT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.SFIXED32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [ScalarType.UINT32]: [0n, 2n ** 32n - 1n],
  [ScalarType.FIXED32]: [0n, 2n ** 32n - 1n],
  [ScalarType.INT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SINT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.SFIXED64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [ScalarType.UINT64]: [0n, 2n ** 64n - 1n],
  [ScalarType.FIXED64]: [0n, 2n ** 64n - 1n],
};

function scalarProblem(type: ScalarType, value: Tree, path: string): InputProblem | undefined {
  const range = integerRange[type];
  if (range) {
    const raw = value instanceof JsonNumber ? value.raw : typeof value === "string" ? value : undefined;
    const [min, max] = range;
    if (raw === undefined || !decimalInteger.test(raw) || BigInt(raw) < min || BigInt(raw) > max) {
      return { field: path, message: `must be a decimal integer from ${min} to ${max}` };
    }
    return undefined;
  }
  switch (type) {
    case ScalarType.STRING:
      if (typeof value !== "string") return { field: path, message: "must be a JSON string" };
      return loneSurrogate.test(value) ? { field: path, message: "must be valid Unicode (it holds a lone surrogate)" } : undefined;
    case ScalarType.BOOL:
      return typeof value === "boolean" ? undefined : { field: path, message: "must be true or false" };
    case ScalarType.BYTES:
      return typeof value === "string" && base64.test(value) ? undefined : { field: path, message: "must be a base64 string" };
    default: {
      // double and float: a JSON number, its text in a string, or NaN and the infinities as strings.
      const ok =
        value instanceof JsonNumber ||
        (typeof value === "string" && (["NaN", "Infinity", "-Infinity"].includes(value) || jsonNumberText.test(value)));
      return ok ? undefined : { field: path, message: "must be a number" };
    }
  }
}

function mapKeyProblem(type: ScalarType, key: string, path: string): InputProblem | undefined {
  if (type === ScalarType.STRING) return loneSurrogate.test(key) ? { field: path, message: "key must be valid Unicode" } : undefined;
  if (type === ScalarType.BOOL)
    return key === "true" || key === "false" ? undefined : { field: path, message: "key must be true or false" };
  return scalarProblem(type, key, path);
}

/** An enum takes a declared name or a declared number: a typo or an unknown number is refused, not dropped. */
function enumProblem(desc: DescEnum, value: Tree, path: string): InputProblem | undefined {
  if (desc.typeName === "google.protobuf.NullValue") return undefined;
  if (typeof value === "string") {
    if (desc.values.some((v) => v.name === value)) return undefined;
    return { field: path, message: `${excerpt(value, 40)} is not a ${desc.name}: ${enumChoices(desc)}` };
  }
  if (value instanceof JsonNumber && decimalInteger.test(value.raw) && desc.values.some((v) => String(v.number) === value.raw)) {
    return undefined;
  }
  const shown = value instanceof JsonNumber ? excerpt(value.raw, 24) : typeof value === "boolean" ? String(value) : "the value";
  return { field: path, message: `${shown} is not a ${desc.name}: ${enumChoices(desc)}` };
}

/** The values a client may choose (not the UNSPECIFIED zero). */
export function enumChoices(desc: DescEnum): string {
  return `one of ${desc.values
    .filter((v) => v.number !== 0)
    .map((v) => v.name)
    .join(", ")}`;
}

function plain(value: Tree): JsonValue {
  if (value instanceof JsonNumber) return Number(value.raw);
  if (value instanceof JsonObject) return Object.fromEntries([...value.entries].map(([k, v]) => [k, plain(v)]));
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

/** Reads text that JSON.parse has accepted, keeping each number's text and noting duplicate member names. */
function parseTree(text: string): Tree {
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  };
  const string = (): string => {
    const start = i;
    let escaped = false;
    i++;
    while (text[i] !== '"') {
      if (text[i] === "\\") {
        escaped = true;
        i++;
      }
      i++;
    }
    i++;
    const raw = text.slice(start, i);
    return escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
  };
  const number = /-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
  const value = (depth: number): Tree => {
    if (depth > MAX_DEPTH) throw new TooDeep();
    skipSpace();
    const c = text[i];
    if (c === "{") {
      i++;
      const object = new JsonObject();
      skipSpace();
      if (text[i] === "}") {
        i++;
        return object;
      }
      for (;;) {
        skipSpace();
        const key = string();
        skipSpace();
        i++; // :
        const member = value(depth + 1);
        if (object.entries.has(key)) object.duplicate ??= key;
        object.entries.set(key, member);
        skipSpace();
        if (text[i++] === "}") return object;
      }
    }
    if (c === "[") {
      i++;
      const items: Tree[] = [];
      skipSpace();
      if (text[i] === "]") {
        i++;
        return items;
      }
      for (;;) {
        items.push(value(depth + 1));
        skipSpace();
        if (text[i++] === "]") return items;
      }
    }
    if (c === '"') return string();
    if (c === "t") {
      i += 4;
      return true;
    }
    if (c === "f") {
      i += 5;
      return false;
    }
    if (c === "n") {
      i += 4;
      return null;
    }
    number.lastIndex = i;
    const match = number.exec(text);
    i = number.lastIndex;
    return new JsonNumber(match?.[0] ?? "");
  };
  return value(0);
}
