import { rolloutServerStateProto, rolloutStatusProto } from "../api/enum-mapping.js";
import { endedRolloutServerStates, endedRolloutStatuses, rolloutServerStates } from "../core/kernel/kinds.js";
import { RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import type { Rollout, RolloutServer } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { RolloutServerState, RolloutStatus } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { enumName, outside, paint, statusText } from "./output.js";

export const rolloutStatus = (r: Rollout) => enumName(RolloutStatus, r.status, "ROLLOUT_STATUS");
export const rolloutKind = (r: Rollout) => enumName(RolloutKind, r.kind, "ROLLOUT_KIND").replaceAll("_", "-");
export const serverState = (s: RolloutServer) => enumName(RolloutServerState, s.state, "ROLLOUT_SERVER_STATE");

const ended = new Set(endedRolloutServerStates.map(rolloutServerStateProto.toProto));
const endedStatuses = new Set(endedRolloutStatuses.map(rolloutStatusProto.toProto));

function bar(done: number, total: number, width = 20): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${paint("green", "█".repeat(filled))}${"░".repeat(width - filled)}]`;
}

function headline(r: Rollout): string {
  const c = r.counts;
  return (
    `rollout ${outside(r.id)} ${rolloutKind(r)}: ${statusText(rolloutStatus(r))}${r.reason ? ` (${outside(r.reason)})` : ""}, batch ${Math.min(r.currentBatch + 1, Math.max(r.batchCount, 1))}/${r.batchCount}` +
    (c ? `, ${c.succeeded} succeeded, ${c.failed} failed, ${c.skipped} skipped of ${c.total}` : "")
  );
}

/** The longest state a server line shows (`not_reached`): the columns after it stay aligned. */
const STATE_WIDTH = Math.max(...rolloutServerStates.map((state) => state.length));

const nameWidth = (r: Rollout) => Math.max(6, ...r.servers.map((s) => outside(s.serverName).length));

/** A server's line, every field padded: lines printed apart (rolloutLog) align. */
function serverLine(s: RolloutServer, width: number): string {
  const detail = [s.currentStep && `step ${s.currentStep}`, s.operationId && `op ${s.operationId}`, s.reason]
    .filter(Boolean)
    .map((part) => outside(part as string))
    .join("  ");
  const state = serverState(s);
  return `  ${outside(s.serverName).padEnd(width)}  batch ${String(s.batch + 1).padEnd(3)}  ${statusText(state)}${" ".repeat(Math.max(0, STATE_WIDTH - state.length))}  ${paint("dim", detail)}`.trimEnd();
}

/**
 * Without a terminal: the rollout's line whenever its status or batch changes, a server's line whenever
 * its state or step changes; no bar, no escape sequence.
 */
export function rolloutLog() {
  const printed = new Map<string, string>();
  const changed = (key: string, value: string) => printed.get(key) !== value && Boolean(printed.set(key, value));
  return (r: Rollout): string[] => {
    const lines: string[] = [];
    if (changed("", `${r.status} ${r.currentBatch}`)) lines.push(headline(r));
    for (const s of r.servers)
      if (changed(s.serverId, `${s.state} ${s.currentStep} ${s.operationId}`)) lines.push(serverLine(s, nameWidth(r)));
    return lines;
  };
}

/** Per batch a progress bar with its counts, then one line per server. */
export function renderRollout(r: Rollout): string[] {
  const lines = [headline(r)];
  const batches = new Map<number, RolloutServer[]>();
  for (const s of r.servers) batches.set(s.batch, [...(batches.get(s.batch) ?? []), s]);
  for (const [index, servers] of [...batches.entries()].sort((a, b) => a[0] - b[0])) {
    const done = servers.filter((s) => ended.has(s.state)).length;
    const failed = servers.filter((s) => s.state === RolloutServerState.FAILED).length;
    const canary = index === 0 && (r.strategy?.canarySize ?? 1) > 0 ? " (canary)" : "";
    lines.push(
      `batch ${index + 1}${canary} ${bar(done, servers.length)} ${done}/${servers.length}${failed ? paint("red", ` ${failed} failed`) : ""}`,
    );
  }
  for (const s of r.servers) lines.push(serverLine(s, nameWidth(r)));
  return lines;
}

export const rolloutEnded = (r: Rollout) => endedStatuses.has(r.status);
