/** PostgreSQL SQLSTATE of an error thrown by postgres.js or PGlite, possibly wrapped by drizzle. */
export function sqlState(error: unknown): string | undefined {
  for (let e: unknown = error; e instanceof Error || (e && typeof e === "object"); e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
    if (!(e as { cause?: unknown }).cause) break;
  }
  return undefined;
}

export const isUniqueViolation = (error: unknown): boolean => sqlState(error) === "23505";
export const isForeignKeyViolation = (error: unknown): boolean => sqlState(error) === "23503";
