/** The fewest characters of an id that `resolve.ts` accepts as a prefix. */
export const minimumIdPrefix = 4;

/**
 * The fewest characters a table cuts an id to: ids are UUIDv7, whose first 13 characters are the
 * millisecond they were made, so items made apart differ within them even when a filter hid the
 * item that would share a shorter prefix.
 */
export const shortestShownId = Math.max(minimumIdPrefix, 13);
