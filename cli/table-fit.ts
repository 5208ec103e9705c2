import { shortestShownId } from "./id-prefix.js";
import { displayWidth, stripColour } from "./text-width.js";

/**
 * The widths of a table's columns so that a row fits in `columns` terminal columns (two spaces between
 * columns). What gives way, in this order:
 * 1. an ID column, down to the shortest prefix that still names one of its rows (+2 characters and at
 *    least the id's time part, for rows a filter left out: id-prefix.ts) and the "…";
 * 2. free text (labels, reasons, descriptions), the widest column first, down to its header's width;
 * 3. the first column when it is free text (the row's name: what an operator reads it by);
 * 4. times, numbers and addresses, the widest first, down to its header's width.
 * A status column (STATUS, STATE, PLAN, or one holding only status words) and the columns in `keep`
 * are never cut. When even that does not fit, the row is as narrow as it can be and wraps.
 */
export function fitColumns(headers: string[], rows: string[][], columns: number, keep: string[] = []): number[] {
  const widths = headers.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? ""))));
  let excess = widths.reduce((sum, w) => sum + w, 0) + 2 * (headers.length - 1) - columns;
  if (excess <= 0) return widths;
  const kinds = headers.map((h, i) => {
    const kind = keep.includes(h)
      ? "keep"
      : kindOf(
          h,
          rows.map((r) => stripColour(r[i] ?? "")),
        );
    return kind === "free" && i === 0 ? "name" : kind;
  });
  const floors = headers.map((h, i) =>
    kinds[i] === "id" ? idFloor(rows.map((r) => r[i] ?? "")) : Math.min(widths[i] ?? 0, Math.max(displayWidth(h), 4)),
  );
  for (const kind of ["id", "free", "name", "fixed"] as const) {
    for (;;) {
      if (excess <= 0) return widths;
      // The widest column of this kind that can still give way.
      let widest = -1;
      for (const [i, w] of widths.entries()) {
        if (kinds[i] === kind && w > (floors[i] ?? 0) && (widest < 0 || w > (widths[widest] ?? 0))) widest = i;
      }
      if (widest < 0) break;
      widths[widest] = (widths[widest] ?? 0) - 1;
      excess -= 1;
    }
  }
  return widths;
}

type Kind = "id" | "status" | "free" | "name" | "fixed" | "keep";

const statusHeaders = new Set(["STATUS", "STATE", "PLAN"]);
const statusWords = new Set([
  "online",
  "configured",
  "succeeded",
  "ok",
  "done",
  "unchanged",
  "completed",
  "failed",
  "error",
  "unreachable",
  "hostkey_mismatch",
  "offline",
  "auth_failed",
  "cancelled",
  "aborted",
  "cannot",
  "running",
  "provisioning",
  "reinstalling",
  "pending",
  "paused",
  "would change",
  "would_change",
  "active",
  "revoked",
  "expired",
  "-",
]);

/** A time, a number, a duration, an address: digits, and no word of three letters or more. */
const fixedCell = (text: string) =>
  text === "" || text === "-" || text === "*" || text === "never" || (/\d/.test(text) && !/[a-z]{3,}/i.test(text.replace(/ ago$/, "")));

function kindOf(header: string, cells: string[]): Kind {
  if (header === "ID") return "id";
  if (statusHeaders.has(header) || (cells.length > 0 && cells.every((c) => statusWords.has(c)))) return "status";
  return cells.every(fixedCell) ? "fixed" : "free";
}

/** The width of the shortest prefix of each id that no other id of the column shares (+2, at least shortestShownId), and the "…". */
function idFloor(ids: string[]): number {
  let longest = 0;
  const sorted = [...ids].sort();
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1] as string;
    const b = sorted[i] as string;
    let same = 0;
    while (same < a.length && a[same] === b[same]) same++;
    longest = Math.max(longest, same);
  }
  return Math.min(Math.max(...ids.map((id) => id.length)), Math.max(shortestShownId, longest + 1 + 2) + 1);
}
