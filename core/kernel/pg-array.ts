/** Elements that need no quotes in an array literal: ids, times, numbers. */
const PLAIN = /^[0-9A-Za-z_.:+-]+$/;
const NULL_WORD = /(?:^|,)null(?:,|$)/i;

const quoted = (v: string | null | undefined): string =>
  v === undefined || v === null ? "NULL" : `"${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;

/**
 * A PostgreSQL array literal (`{a,"b c",NULL}`) of text values, to pass a
 * whole column as one query parameter (cast in SQL: `$1::uuid[]`). Any text is
 * safe: unless every element is plain (letters, digits, `_.:+-`, never the
 * word NULL), each is quoted; undefined and null are NULL.
 */
export function pgArray(values: readonly (string | null | undefined)[]): string {
  if (values.every((v) => typeof v === "string" && PLAIN.test(v))) {
    const joined = values.join(",");
    if (!NULL_WORD.test(joined)) return `{${joined}}`;
  }
  return `{${values.map(quoted).join(",")}}`;
}
