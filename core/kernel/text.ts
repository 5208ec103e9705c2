/**
 * The one rule for text that came from outside (a client, an agent, a managed host) and may be
 * shown to a person: in an error message, a log line, a terminal or a chat message.
 *
 * Unsafe: Unicode's control characters (C0 with NUL, DEL, C1: an ESC starts a terminal escape,
 * OSC 52 writes the clipboard), the bidirectional formatting characters (U+202E reverses what
 * follows on screen) and lone surrogates (not text; refused by many JSON readers).
 */
const unsafeCharacter = /\p{Cc}|[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|\p{Cs}/u;
const unsafeCharacters = /\p{Cc}|[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|\p{Cs}/gu;
const unsafeOtherThanWhitespace = /(?![\t\n\r])(\p{Cc}|[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|\p{Cs})/u;
const unsafeOtherThanWhitespaceAll = /(?![\t\n\r])(\p{Cc}|[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]|\p{Cs})/gu;

/** Whether `text` holds a character that must never reach a person's screen as it is. */
export function hasUnsafeCharacters(text: string, options: { multiline?: boolean } = {}): boolean {
  return (options.multiline ? unsafeOtherThanWhitespace : unsafeCharacter).test(text);
}

/** `text` with every unsafe character written as a visible `\uXXXX` escape (tab and newlines kept when multiline). */
export function displaySafe(text: string, options: { multiline?: boolean } = {}): string {
  return text.replace(options.multiline ? unsafeOtherThanWhitespaceAll : unsafeCharacters, (c) => {
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/** A short quoted excerpt of an outside value for an error message: at most `max` characters, escaped. */
export function excerpt(value: unknown, max = 40): string {
  const text = String(value);
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return displaySafe(JSON.stringify(cut));
}
