import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";

/** A field whose name says it holds ids: `id`, `*_id`, `*_ids`. Nothing else is ever read. */
const idName = /^(id|[a-z0-9_]+_ids?)$/;
/** How deep into nested messages ids are looked for (a request's `cluster.id`, say). */
const MAX_DEPTH = 2;

type Reader = (message: Record<string, unknown>, into: string[]) => void;

function isStringField(field: DescField): boolean {
  return (
    (field.fieldKind === "scalar" || (field.fieldKind === "list" && field.listKind === "scalar")) && field.scalar === ScalarType.STRING
  );
}

function readerOf(desc: DescMessage, depth: number): Reader | undefined {
  const readers: Reader[] = [];
  for (const field of desc.fields) {
    const key = field.localName;
    if (isStringField(field) && idName.test(field.name)) {
      readers.push((message, into) => {
        const value = message[key];
        if (typeof value === "string") into.push(value);
        else if (Array.isArray(value)) for (const v of value) if (typeof v === "string") into.push(v);
      });
    } else if (field.fieldKind === "message" && depth < MAX_DEPTH) {
      const nested = readerOf(field.message, depth + 1);
      if (nested) {
        readers.push((message, into) => {
          const value = message[key];
          if (value && typeof value === "object") nested(value as Record<string, unknown>, into);
        });
      }
    }
  }
  if (readers.length === 0) return undefined;
  return (message, into) => {
    for (const read of readers) read(message, into);
  };
}

const readers = new WeakMap<DescMessage, Reader | undefined>();

/**
 * The ids a request names, read only from fields the descriptor calls ids (so a secret, a key or
 * free text is never read); the reader for each message type is built once from its descriptor.
 */
export function targetIdsOf(desc: DescMessage, message: unknown): string[] {
  if (!readers.has(desc)) readers.set(desc, readerOf(desc, 0));
  const read = readers.get(desc);
  const ids: string[] = [];
  if (read && message && typeof message === "object") read(message as Record<string, unknown>, ids);
  return ids;
}
