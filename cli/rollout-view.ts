import { rolloutServerStateProto, rolloutStatusProto } from "../api/enum-mapping.js";
import { endedRolloutServerStates, endedRolloutStatuses } from "../core/kernel/kinds.js";
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

/** Per batch a progress bar with its counts, then one line per server. */
export function renderRollout(r: Rollout): string[] {
  const c = r.counts;
  const lines = [
    `rollout ${outside(r.id)} ${rolloutKind(r)}: ${statusText(rolloutStatus(r))}${r.reason ? ` (${outside(r.reason)})` : ""}, batch ${Math.min(r.currentBatch + 1, Math.max(r.batchCount, 1))}/${r.batchCount}` +
      (c
        ? `, ${c.succeeded} succeeded, ${c.failed} failed, ${c.skipped} skipped${c.notReached ? `, ${c.notReached} not reached` : ""} of ${c.total}`
        : ""),
  ];
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
  const width = Math.max(6, ...r.servers.map((s) => outside(s.serverName).length));
  const stateWidth = Math.max(9, ...r.servers.map((s) => serverState(s).length));
  for (const s of r.servers) {
    const detail = [s.currentStep && `step ${s.currentStep}`, s.operationId && `op ${s.operationId}`, s.reason]
      .filter(Boolean)
      .map((part) => outside(part as string))
      .join("  ");
    lines.push(
      `  ${outside(s.serverName).padEnd(width)}  batch ${s.batch + 1}  ${statusText(serverState(s)).padEnd(stateWidth)}  ${paint("dim", detail)}`.trimEnd(),
    );
  }
  return lines;
}

export const rolloutEnded = (r: Rollout) => endedStatuses.has(r.status);
