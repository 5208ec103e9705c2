import { AppError } from "./errors.js";

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids are UUIDs; anything else is refused before it reaches SQL. */
export function requireId(field: string, value: string): string {
  if (!uuidPattern.test(value)) throw AppError.invalid(field, "must be a UUID");
  return value.toLowerCase();
}
