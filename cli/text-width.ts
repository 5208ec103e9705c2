/**
 * How many terminal columns text takes, and text cut to a number of columns: per grapheme (a letter with
 * its combining marks is one), wide East Asian characters and emoji take two, combining marks and
 * zero-width characters none. Colour sequences (paint()) take none. Text shown here is already escaped
 * (outside()), so no other escape sequence is in it.
 */
const graphemes = new Intl.Segmenter("en", { granularity: "grapheme" });
// biome-ignore lint/suspicious/noControlCharactersInRegex: colour sequences are what is skipped
const colour = /\u001b\[[0-9;]*m/g;
const zeroWidth = /^[\p{Mn}\p{Me}\p{Cf}]+$/u; // combining marks, variation selectors, zero-width space and joiner
const emoji = /\p{Emoji_Presentation}|\ufe0f|\p{Regional_Indicator}/u;

/** East Asian Wide and Fullwidth blocks (Unicode's EastAsianWidth.txt, W and F), by their first code point. */
function wide(code: number): boolean {
  return (
    (code >= 0x1100 && code <= 0x115f) ||
    code === 0x2329 ||
    code === 0x232a ||
    (code >= 0x2e80 && code <= 0x303e) ||
    (code >= 0x3041 && code <= 0x33ff) ||
    (code >= 0x3400 && code <= 0x4dbf) ||
    (code >= 0x4e00 && code <= 0x9fff) ||
    (code >= 0xa000 && code <= 0xa4cf) ||
    (code >= 0xa960 && code <= 0xa97f) ||
    (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0xfe10 && code <= 0xfe19) ||
    (code >= 0xfe30 && code <= 0xfe6f) ||
    (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) ||
    (code >= 0x1b000 && code <= 0x1b2ff) ||
    (code >= 0x1f200 && code <= 0x1f2ff) ||
    (code >= 0x20000 && code <= 0x3fffd)
  );
}

function graphemeWidth(g: string): number {
  if (zeroWidth.test(g)) return 0;
  if (emoji.test(g)) return 2;
  return wide(g.codePointAt(0) ?? 0) ? 2 : 1;
}

export const stripColour = (text: string) => text.replace(colour, "");

/** The columns `text` takes on a terminal. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const { segment } of graphemes.segment(stripColour(text))) width += graphemeWidth(segment);
  return width;
}

/** `text` in at most `columns` columns: cut at a grapheme, ending in "…" when anything was cut (and its colour dropped). */
export function cutToWidth(text: string, columns: number): string {
  if (displayWidth(text) <= columns) return text;
  let out = "";
  let width = 0;
  for (const { segment } of graphemes.segment(stripColour(text))) {
    const w = graphemeWidth(segment);
    if (width + w > columns - 1) break;
    out += segment;
    width += w;
  }
  return `${out}…`;
}
