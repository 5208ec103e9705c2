/** Elements that need no quotes in an array literal: ids, times, numbers (but never the word NULL). */
const PLAIN = /^[0-9A-Za-z_.:+-]+$/;

/**
 * A PostgreSQL array literal (`{a,"b c",NULL}`) of text values, to pass a
 * whole column as one query parameter (cast in SQL: `$1::uuid[]`). An element
 * is quoted unless it is plain (letters, digits, `_.:+-`), so any text is
 * safe; undefined and null are NULL.
 */
export function pgArray(values: readonly (string | null | undefined)[]): string {
  const elements = values.map((v) => {
    if (v === undefined || v === null) return "NULL";
    if (PLAIN.test(v) && v.toUpperCase() !== "NULL") return v;
    return `"${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
  });
  return `{${elements.join(",")}}`;
}
