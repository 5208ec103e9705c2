import { displaySafe } from "../kernel/text.js";

/** Target ids an entry keeps: the first of them, each cut (ids are UUIDs; a hostile `id` field is not). */
export const MAX_TARGET_IDS = 16;
const MAX_TARGET_LENGTH = 64;
const MAX_USER_AGENT = 200;
const MAX_SHORT = 128;

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A value from outside as an entry keeps it: cut, then escaped by the one text rule. */
export function bounded(value: string, max: number): string {
  return displaySafe(value.length > max ? `${value.slice(0, max)}…` : value);
}

/** Distinct non-empty ids, at most MAX_TARGET_IDS, each a UUID as it is or a bounded escaped excerpt. */
export function boundedTargets(ids: readonly string[]): string[] {
  const kept = new Set<string>();
  for (const id of ids) {
    if (kept.size >= MAX_TARGET_IDS) break;
    if (id === "") continue;
    kept.add(uuid.test(id) ? id.toLowerCase() : bounded(id, MAX_TARGET_LENGTH));
  }
  return [...kept];
}

export const boundedUserAgent = (value: string | null | undefined) => (value ? bounded(value, MAX_USER_AGENT) : null);
export const boundedShort = (value: string | null | undefined) => (value ? bounded(value, MAX_SHORT) : null);
