/**
 * A PostgreSQL array literal (`{"a","b",NULL}`) of text values, to pass a
 * whole column as one query parameter (cast in SQL: `$1::uuid[]`). Every
 * element is quoted, so any text is safe; undefined and null are NULL.
 */
export function pgArray(values: readonly (string | null | undefined)[]): string {
  const elements = values.map((v) => (v === undefined || v === null ? "NULL" : `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`));
  return `{${elements.join(",")}}`;
}
