import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { InputProblem } from "./exact-input-json.js";

/**
 * Which field of a binary request the decoder could not read. protobuf-es refuses invalid UTF-8 or
 * a truncated body without saying where ("parse binary: premature EOF"); this walks the body
 * against the message type and names the field, so the refusal can.
 */

const MAX_DEPTH = 64;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const join = (path: string, name: string) => (path ? `${path}.${name}` : name);

export function binaryInputProblem(desc: DescMessage, bytes: Uint8Array): InputProblem {
  return walk(desc, bytes, "", 0) ?? { field: "request", message: `is not a valid binary ${desc.name}` };
}

function walk(desc: DescMessage, bytes: Uint8Array, path: string, depth: number): InputProblem | undefined {
  if (depth > MAX_DEPTH) return { field: path || "request", message: `is nested deeper than ${MAX_DEPTH} levels` };
  const reader = new BinaryReader(bytes);
  const counts = new Map<number, number>();
  while (reader.pos < reader.len) {
    let fieldNo: number;
    let wireType: WireType;
    try {
      [fieldNo, wireType] = reader.tag();
    } catch {
      return { field: path || "request", message: "is not valid protobuf (a malformed tag)" };
    }
    const field = desc.fields.find((f) => f.number === fieldNo);
    const index = counts.get(fieldNo) ?? 0;
    counts.set(fieldNo, index + 1);
    const at = join(path, field ? (field.fieldKind === "list" ? `${field.name}[${index}]` : field.name) : String(fieldNo));
    try {
      if (!field) reader.skip(wireType, fieldNo);
      const problem = field && readField(field, reader, wireType, at, depth);
      if (problem) return problem;
    } catch {
      return { field: at, message: "is truncated or malformed" };
    }
  }
  return undefined;
}

function readField(field: DescField, reader: BinaryReader, wireType: WireType, path: string, depth: number): InputProblem | undefined {
  const kind = field.fieldKind === "list" ? field.listKind : field.fieldKind;
  const text = kind === "scalar" && (field as { scalar: ScalarType }).scalar === ScalarType.STRING;
  if (kind !== "message" && kind !== "map" && !text) {
    reader.skip(wireType, field.number);
    return undefined;
  }
  if (wireType !== WireType.LengthDelimited) return { field: path, message: "has the wrong wire type" };
  const data = reader.bytes();
  if (text) return validUtf8(data) ? undefined : { field: path, message: "is not valid UTF-8" };
  if (field.fieldKind === "map") return mapEntryProblem(field, data, path, depth);
  return walk((field as { message: DescMessage }).message, data, path, depth + 1);
}

function mapEntryProblem(field: DescField & { fieldKind: "map" }, data: Uint8Array, path: string, depth: number): InputProblem | undefined {
  const reader = new BinaryReader(data);
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    const keyText = no === 1 && field.mapKey === ScalarType.STRING;
    const valueText = no === 2 && field.mapKind === "scalar" && field.scalar === ScalarType.STRING;
    if (keyText || valueText || (no === 2 && field.mapKind === "message")) {
      if (wireType !== WireType.LengthDelimited) return { field: path, message: "has the wrong wire type" };
      const bytes = reader.bytes();
      if (no === 2 && field.mapKind === "message") {
        const problem = walk(field.message, bytes, path, depth + 1);
        if (problem) return problem;
      } else if (!validUtf8(bytes)) return { field: path, message: `${keyText ? "a key" : "a value"} is not valid UTF-8` };
    } else reader.skip(wireType, no);
  }
  return undefined;
}

function validUtf8(bytes: Uint8Array): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}
