import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { displaySafe } from "../../core/kernel/text.js";
import type { Metrics } from "../../gen/axion/infrastructure/v1/agent_service_pb.js";
import { ServerStatus } from "../../gen/axion/infrastructure/v1/server_service_pb.js";

/**
 * Outside text (a host's words, a user's labels) as a person may see it: the one rule of
 * core/kernel/text.ts, so control and bidirectional characters show as visible \uXXXX. React renders
 * the result as text, never markup.
 */
export const shown = (text: string): string => displaySafe(text);

export const statusName = (status: ServerStatus): string => ServerStatus[status] ?? `status ${status}`;

/** Every status a filter may ask for, in the enum's order. */
export const filterableStatuses: ServerStatus[] = Object.values(ServerStatus).filter(
  (v): v is ServerStatus => typeof v === "number" && v !== ServerStatus.UNSPECIFIED,
);

const toDate = (t: Timestamp): Date => new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6));

export function isoTime(t: Timestamp | undefined): string {
  return t ? toDate(t).toISOString() : "";
}

/** "3 min ago"; a timestamp in the future (a host's clock) reads "just now". */
export function ago(t: Timestamp | undefined, now = Date.now()): string {
  if (!t) return "—";
  const s = Math.max(0, Math.round((now - toDate(t).getTime()) / 1000));
  if (s < 60) return s < 5 ? "just now" : `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

const percent = (used: bigint, total: bigint): string => (total > 0n ? `${Math.round((Number(used) / Number(total)) * 100)}%` : "—");

export function usage(metrics: Metrics | undefined): { cpu: string; memory: string; disk: string } {
  if (!metrics) return { cpu: "—", memory: "—", disk: "—" };
  // The root file system when reported, else the fullest mount.
  const root = metrics.disks.find((d) => d.mount === "/");
  const fullest = [...metrics.disks].sort(
    (a, b) => Number(b.usedBytes) * Number(a.totalBytes) - Number(a.usedBytes) * Number(b.totalBytes),
  )[0];
  const disk = root ?? fullest;
  return {
    cpu: `${Math.round(metrics.cpuPercent)}%`,
    memory: percent(metrics.memoryUsedBytes, metrics.memoryTotalBytes),
    disk: disk ? percent(disk.usedBytes, disk.totalBytes) : "—",
  };
}
