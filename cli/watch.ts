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
import { colourEnabled, duration, enumName, fitToTerminal, outside, paint } from "./output.js";

const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const marks: Record<string, string> = { done: "✓", unchanged: "=", skipped: "-", failed: "✗", running: "…" };

export const operationStatus = (op: Operation) => enumName(OperationStatus, op.status, "OPERATION_STATUS");
export const operationKind = (op: Operation) => enumName(OperationKind, op.kind, "OPERATION_KIND");

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

/** The lines of an operation's state: a header, a line per step, the end (or the failure with its reason). */
export function render(op: Operation, serverName: string, frame = 0, now = Date.now()): string[] {
  const width = Math.max(8, ...op.steps.map((s) => outside(s.name).length));
  const lines = [`${operationKind(op)} on ${outside(serverName)} (operation ${outside(op.id)})`];
  for (const step of op.steps) lines.push(stepLine(step, width, frame, now));
  const status = operationStatus(op);
  if (op.status === OperationStatus.RUNNING) {
    if (!op.steps.some((s) => s.status === "running"))
      lines.push(`  ${paint("cyan", frames[frame % frames.length] as string)} waiting for the next step`);
  } else {
    const total =
      op.finishTime && op.startTime
        ? ` in ${duration(timestampDate(op.finishTime).getTime() - timestampDate(op.startTime).getTime())}`
        : "";
    const end = `${status.toUpperCase()}${total}`;
    lines.push(op.status === OperationStatus.SUCCEEDED ? paint("green", end) : paint("red", end));
    if (op.error) lines.push(`${paint("red", "error:")} ${outside(op.error)}`);
  }
  return lines;
}

/**
 * Follows an operation through WatchOperation until it ends. On a terminal the block is redrawn with a
 * spinner; otherwise each change prints only the lines not printed before. Ctrl-C stops watching only.
 */
export async function watchOperation(api: Api, id: string, serverName: string): Promise<Operation> {
  const tty = colourEnabled(process.stdout) || Boolean(process.stdout.isTTY);
  const abort = new AbortController();
  let latest: Operation | undefined;
  let drawn = 0;
  let printed = 0;
  let frame = 0;
  const draw = () => {
    if (!latest) return;
    const lines = render(latest, serverName, frame);
    if (tty) {
      lines.splice(0, lines.length, ...fitToTerminal(lines));
      process.stdout.write(`${drawn > 0 ? `\u001b[${drawn}A` : ""}\u001b[J${lines.join("\n")}\n`);
      drawn = lines.length;
    } else {
      // Only finished lines are final; the running step is printed once it ends.
      const final =
        latest.status === OperationStatus.RUNNING
          ? lines.filter((l) => !l.includes("waiting for")).slice(0, 1 + latest.steps.filter((s) => s.status !== "running").length)
          : lines;
      process.stdout.write(
        final
          .slice(printed)
          .map((l) => `${l}\n`)
          .join(""),
      );
      printed = Math.max(printed, final.length);
    }
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
    for await (const message of api.service(OperationService).watchOperation({ id }, { signal: abort.signal })) {
      if (!message.operation) continue;
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

/** Exit 1 unless the operation succeeded. */
export function exitFor(op: Operation): void {
  if (op.status === OperationStatus.SUCCEEDED || op.status === OperationStatus.RUNNING) return;
  throw new CliError(`operation ${outside(op.id)} ${operationStatus(op)}${op.error ? `: ${outside(op.error)}` : ""}`, Exit.failed);
}
