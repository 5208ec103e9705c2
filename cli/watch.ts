import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type Operation,
  OperationKind,
  OperationService,
  OperationStatus,
  type OperationStep,
} from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import type { Api } from "./client.js";
import { CliError, Exit } from "./errors.js";
import { liveBlock } from "./live-block.js";
import { duration, enumName, outside, paint } from "./output.js";
import { reconnecting } from "./reconnect.js";

const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const marks: Record<string, string> = { done: "✓", unchanged: "=", skipped: "-", failed: "✗", running: "…" };

export const operationStatus = (op: Operation) => enumName(OperationStatus, op.status, "OPERATION_STATUS");
export const operationKind = (op: Operation) => enumName(OperationKind, op.kind, "OPERATION_KIND");

/** Step names are padded to this width at least: without a terminal lines are printed as steps start, so later names are unknown. */
const stepNameWidth = 18;

function stepLine(step: OperationStep, width: number, frame: number, now: number): string {
  const name = outside(step.name).padEnd(width);
  if (step.status === "running") {
    const elapsed = step.startTime ? now - timestampDate(step.startTime).getTime() : 0;
    return `  ${paint("cyan", frames[frame % frames.length] as string)} ${name}  ${duration(Math.max(0, elapsed))}`;
  }
  const mark = marks[step.status] ?? "?";
  const coloured = step.status === "failed" ? paint("red", mark) : step.status === "running" ? mark : paint("green", mark);
  const detail = step.detail ? `  ${paint("dim", outside(step.detail))}` : "";
  return `  ${coloured} ${name}  ${duration(Number(step.durationMs)).padStart(6)}  ${step.status}${detail}`;
}

const header = (op: Operation, serverName: string) => `${operationKind(op)} on ${outside(serverName)} (operation ${outside(op.id)})`;

/** A step's line without a terminal: every field padded (the running step has no duration yet), so lines printed apart align. */
function loggedStepLine(step: OperationStep): string {
  const mark = marks[step.status] ?? "?";
  const time = step.status === "running" ? "-" : duration(Number(step.durationMs));
  const detail = step.detail ? `  ${outside(step.detail)}` : "";
  return `  ${mark} ${outside(step.name).padEnd(stepNameWidth)}  ${time.padStart(6)}  ${step.status.padEnd(9)}${detail}`.trimEnd();
}

/** The lines of an operation's state: a header, a line per step, the end (or the failure with its reason). */
export function render(op: Operation, serverName: string, frame = 0, now = Date.now()): string[] {
  const width = Math.max(8, ...op.steps.map((s) => outside(s.name).length));
  const lines = [header(op, serverName)];
  for (const step of op.steps) lines.push(stepLine(step, width, frame, now));
  if (op.status === OperationStatus.RUNNING) {
    if (!op.steps.some((s) => s.status === "running"))
      lines.push(`  ${paint("cyan", frames[frame % frames.length] as string)} waiting for the next step`);
  } else {
    lines.push(...endLines(op));
  }
  return lines;
}

/** An ended operation's outcome and time, then its error. */
function endLines(op: Operation): string[] {
  const total =
    op.finishTime && op.startTime ? ` in ${duration(timestampDate(op.finishTime).getTime() - timestampDate(op.startTime).getTime())}` : "";
  const end = `${operationStatus(op).toUpperCase()}${total}`;
  const lines = [op.status === OperationStatus.SUCCEEDED ? paint("green", end) : paint("red", end)];
  if (op.error) lines.push(`${paint("red", "error:")} ${outside(op.error)}`);
  return lines;
}

/**
 * Without a terminal: the header once, then one line whenever a step starts or ends (every field
 * padded), then the end. No spinner, no escape sequence (colour is off off a terminal).
 */
function stepLog(serverName: string) {
  let headed = false;
  const printed = new Map<string, string>();
  return (op: Operation): string[] => {
    const lines = headed ? [] : [header(op, serverName)];
    headed = true;
    for (const step of op.steps) {
      if (printed.get(step.name) === step.status) continue;
      printed.set(step.name, step.status);
      lines.push(loggedStepLine(step));
    }
    if (op.status !== OperationStatus.RUNNING) lines.push(...endLines(op));
    return lines;
  };
}

/**
 * Follows an operation through WatchOperation until it ends. On a terminal the block is redrawn in place
 * with a spinner (live-block.ts); otherwise a line per step change (stepLog). Ctrl-C stops watching only.
 */
export async function watchOperation(api: Api, id: string, serverName: string): Promise<Operation> {
  const tty = Boolean(process.stdout.isTTY);
  const abort = new AbortController();
  let latest: Operation | undefined;
  let frame = 0;
  const block = liveBlock();
  const log = stepLog(serverName);
  let note: string | undefined;
  const draw = () => {
    if (!latest) return;
    if (!tty)
      return void process.stdout.write(
        log(latest)
          .map((l) => `${l}\n`)
          .join(""),
      );
    const lines = render(latest, serverName, frame);
    if (latest.status === OperationStatus.RUNNING) block.draw(note ? [...lines, `  ${paint("dim", note)}`] : lines);
    else block.end(lines);
  };
  // An API restarting under the watch: a note, and the watch goes on where it was.
  const onRetry = (text: string) => {
    if (!tty) return void process.stderr.write(`${text}\n`);
    note = text;
    draw();
  };
  const spinner = tty
    ? setInterval(() => {
        frame += 1;
        draw();
      }, 120)
    : undefined;
  const onInterrupt = () => abort.abort();
  process.once("SIGINT", onInterrupt);
  try {
    const stream = reconnecting(
      () => api.service(OperationService).watchOperation({ id }, { signal: abort.signal }),
      abort.signal,
      onRetry,
    );
    for await (const message of stream) {
      if (!message.operation) continue;
      note = undefined;
      latest = message.operation;
      draw();
    }
  } catch (error) {
    if (!abort.signal.aborted && !(error instanceof ConnectError && error.code === Code.Canceled)) throw error;
  } finally {
    if (spinner) clearInterval(spinner);
    process.off("SIGINT", onInterrupt);
  }
  if (abort.signal.aborted) {
    throw new CliError(`stopped watching; operation ${id} keeps running. Cancel it with: axion ops cancel ${id}`, Exit.interrupted);
  }
  if (!latest) throw CliError.failed(`operation ${id}: the watch ended without a state`);
  return latest;
}

/** For scripts (`-o json`): follows the operation to its end, through API restarts, and returns its last state. */
export async function finalOperationState(api: Api, id: string): Promise<Operation | undefined> {
  const never = new AbortController().signal;
  let last: Operation | undefined;
  const onRetry = (note: string) => process.stderr.write(`${note}\n`);
  for await (const m of reconnecting(() => api.service(OperationService).watchOperation({ id }), never, onRetry))
    if (m.operation) last = m.operation;
  return last;
}

/** Exit 1 unless the operation succeeded. */
export function exitFor(op: Operation): void {
  if (op.status === OperationStatus.SUCCEEDED || op.status === OperationStatus.RUNNING) return;
  throw new CliError(`operation ${outside(op.id)} ${operationStatus(op)}${op.error ? `: ${outside(op.error)}` : ""}`, Exit.failed);
}
