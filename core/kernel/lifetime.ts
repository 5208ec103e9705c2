/**
 * A token's lifetime as a person writes it, the one rule for `axion tokens create --expires-in`
 * and `npm run owner:create -- --expires-in`: a whole number of minutes, hours or days.
 */
export const LIFETIME_FORMAT = "a whole number of minutes, hours or days (30m, 12h, 7d), at most 3650d";

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MAX_MS = 3650 * UNIT_MS.d;

/** The lifetime in milliseconds, or undefined when `text` does not follow LIFETIME_FORMAT. */
export function lifetimeMs(text: string): number | undefined {
  const match = /^([1-9][0-9]{0,5})([mhd])$/.exec(text);
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  return ms <= MAX_MS ? ms : undefined;
}
