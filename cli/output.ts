import { styleText } from "node:util";
import { type DescMessage, type MessageShape, toJson } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { displaySafe } from "../core/kernel/text.js";
import { fitColumns } from "./table-fit.js";
import { cutToWidth, displayWidth } from "./text-width.js";

export type Format = "table" | "json";

/** Colour only on a terminal, never with NO_COLOR (any value) or TERM=dumb. */
export function colourEnabled(stream: NodeJS.WriteStream = process.stdout): boolean {
  return Boolean(stream.isTTY) && process.env.NO_COLOR === undefined && process.env.TERM !== "dumb";
}

type Style = "green" | "red" | "yellow" | "cyan" | "dim" | "bold";
export function paint(style: Style, text: string, stream: NodeJS.WriteStream = process.stdout): string {
  return colourEnabled(stream) ? styleText(style, text) : text;
}

/** A message as JSON with its proto (snake_case) field names and every field present: stable for scripts. */
export function messageJson<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): unknown {
  return toJson(schema, message, { useProtoFieldName: true, alwaysEmitImplicit: true });
}

/**
 * Text that came from outside (a host, an agent, another user, the API) as one line a terminal
 * shows as it is: whitespace runs become a space; control characters (ESC, so no escape sequence:
 * OSC 52 writes the clipboard, ESC [2J clears the screen), C1, bidi controls and lone surrogates
 * become visible \uXXXX escapes (core/kernel/text.ts).
 */
export const outside = (text: string): string => displaySafe(text.replace(/\s+/g, " "));

// biome-ignore lint/suspicious/noControlCharactersInRegex: the colour sequences paint() writes are what is kept
const colour = /(\u001b\[[0-9;]*m)/;
/** A cell or field of this CLI's own making: outside text in it is escaped, only colour (paint()) is kept. */
const cell = (text: string) =>
  text
    .split(colour)
    .map((part, i) => (i % 2 === 1 ? part : outside(part)))
    .join("");

/** One JSON document on stdout; C1 and bidi controls, which JSON leaves raw, become \u escapes (the same string to a JSON reader). */
export function printJson(document: unknown): void {
  process.stdout.write(`${displaySafe(JSON.stringify(document, null, 2), { multiline: true })}\n`);
}

/** The columns text takes on a terminal (wide characters two, colour none). */
export const visibleLength = displayWidth;

/**
 * The width tables are fitted to: the terminal's; without one (a pipe, a file), COLUMNS when it is set
 * to a number, else none (nothing is cut: a script reading a table gets whole values; -o json is for scripts).
 */
export function outputColumns(stream: NodeJS.WriteStream = process.stdout): number | undefined {
  if (stream.isTTY) return stream.columns || 80;
  const columns = Number(process.env.COLUMNS);
  return Number.isInteger(columns) && columns > 0 ? columns : undefined;
}

/**
 * Lines cut to the terminal's width, so each is one row: a redraw moves the cursor up by the line
 * count, which a wrapped line would break. A cut line loses its colour.
 */
export function fitToTerminal(lines: string[], columns = process.stdout.columns || 80): string[] {
  return lines.map((line) => (displayWidth(line) < columns ? line : cutToWidth(line, columns - 1)));
}
const pad = (text: string, width: number) => text + " ".repeat(Math.max(0, width - displayWidth(text)));

export interface TableOptions {
  /** Headers of columns never cut: an id a command needs whole (no prefix lookup for it). */
  keep?: string[];
}

/**
 * An aligned table: header row, then one row per item; the last column is not padded. On a terminal
 * (or with COLUMNS) the columns are fitted to its width, cut with "…" (table-fit.ts says which first).
 */
export function table(headers: string[], rows: string[][], options: TableOptions = {}): string {
  const cells = rows.map((r) => headers.map((_, i) => cell(r[i] ?? "")));
  const columns = outputColumns();
  const widths =
    columns === undefined
      ? headers.map((h, i) => Math.max(displayWidth(h), ...cells.map((r) => displayWidth(r[i] ?? ""))))
      : fitColumns(headers, cells, columns, options.keep);
  const line = (row: string[]) =>
    row
      .map((c, i) => {
        const fitted = cutToWidth(c, widths[i] ?? 0);
        return i === row.length - 1 ? fitted : pad(fitted, widths[i] ?? 0);
      })
      .join("  ")
      .trimEnd();
  return [line(headers.map((h) => paint("bold", h))), ...cells.map(line)].join("\n");
}

/** Whether a table's rows fit the width tables are fitted to (outputColumns) without cutting anything. */
export function tableFits(headers: string[], rows: string[][]): boolean {
  const columns = outputColumns();
  if (columns === undefined) return true;
  const widths = headers.map((h, i) => Math.max(displayWidth(h), ...rows.map((r) => displayWidth(cell(r[i] ?? "")))));
  return widths.reduce((sum, w) => sum + w, 0) + 2 * (headers.length - 1) <= columns;
}

export function printTable(headers: string[], rows: string[][], empty = "(none)", options: TableOptions = {}): void {
  process.stdout.write(rows.length === 0 ? `${empty}\n` : `${table(headers, rows, options)}\n`);
}

/** `key: value` lines, keys aligned. */
export function printFields(fields: [string, string][]): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  process.stdout.write(`${fields.map(([k, v]) => `${paint("bold", `${k}:`)}${" ".repeat(width - k.length + 1)}${cell(v)}`).join("\n")}\n`);
}

/** An enum value's name without its type prefix, lower case: SERVER_STATUS_ONLINE → online. */
export function enumName(enumObject: Record<string | number, string | number>, value: number, prefix: string): string {
  const name = enumObject[value];
  return typeof name === "string" ? name.replace(new RegExp(`^${prefix}_?`), "").toLowerCase() : String(value);
}

export function time(ts: Timestamp | undefined): string {
  if (!ts) return "-";
  return timestampDate(ts)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "Z");
}

/** 1.2s, 3m04s, 1h02m. */
export function duration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function ago(ts: Timestamp | undefined, now = Date.now()): string {
  if (!ts) return "-";
  return `${duration(Math.max(0, now - timestampDate(ts).getTime()))} ago`;
}

export const labels = (map: Record<string, string>) =>
  Object.entries(map)
    .map(([k, v]) => `${outside(k)}=${outside(v)}`)
    .join(",") || "-";

export function bytes(n: bigint | number): string {
  const v = Number(n);
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i += 1;
  }
  return `${i === 0 ? x : x.toFixed(1)} ${units[i]}`;
}

const sparks = "▁▂▃▄▅▆▇█";
/** A sparkline of the values, scaled between their own min and max. */
export function sparkline(values: number[]): string {
  if (values.length === 0) return "";
  const min = Math.min(...values);
  const max = Math.max(...values);
  const span = max - min;
  return values.map((v) => sparks[span === 0 ? 0 : Math.round(((v - min) / span) * (sparks.length - 1))]).join("");
}

/** A status coloured by what it means for the operator. */
export function statusText(status: string): string {
  if (/^(online|configured|succeeded|ok|done|unchanged|completed)$/.test(status)) return paint("green", status);
  if (/^(failed|error|unreachable|hostkey_mismatch|offline|auth_failed|cancelled|aborted|cannot)$/.test(status))
    return paint("red", status);
  if (/^(running|provisioning|reinstalling|pending|paused|would_change)$/.test(status)) return paint("yellow", status);
  return status;
}
