import { continueAsNew, ParentClosePolicy, startChild } from "@temporalio/workflow";
import { workflowRole } from "../temporal/search-attributes.js";
import type { Diagnosis } from "./definitions.js";
import { probeActivities, recordActivities } from "./proxies.js";
import { recoveryWorkflow } from "./recovery.js";

export interface FleetCheckInput {
  diskThresholdPct?: number;
  /** Servers checked at once. */
  concurrency?: number;
  /** Servers per page; each page is one run, then the check continues as new. Default 200. */
  pageSize?: number;
  /** Where the previous run stopped (the last server id it checked): keyset pagination. */
  afterId?: string;
  /** Totals of the previous runs of this check. */
  carried?: FleetCheckReport;
}

export interface FleetCheckReport {
  checked: number;
  unreachable: number;
  recoveriesStarted: number;
  /** Runs this check took (one per page). */
  pages: number;
}

function needsRecovery(d: Diagnosis | undefined, thresholdPct: number): boolean {
  return !!d && (d.docker === "unresponsive" || d.docker === "stopped" || d.mounts.some((m) => m.usedPct >= thresholdPct));
}

/**
 * Run by the `fleet-check` Temporal Schedule: tests every server, marks the
 * unreachable ones, and starts a recovery workflow where the check finds a full
 * disk or a hung Docker (unless the server is busy with another operation).
 * One page of servers (in id order) per run, then it continues as new after the
 * last id it checked: the history of each run is bounded by the page size,
 * however large the fleet, and every server is reached.
 */
export async function fleetCheckWorkflow(input: FleetCheckInput = {}): Promise<FleetCheckReport> {
  const threshold = input.diskThresholdPct ?? 85;
  const concurrency = input.concurrency ?? 10;
  const pageSize = input.pageSize ?? 200;
  const report: FleetCheckReport = { ...(input.carried ?? { checked: 0, unreachable: 0, recoveriesStarted: 0, pages: 0 }) };
  report.pages += 1;
  const ids = await recordActivities.listServersToCheck({ afterId: input.afterId, limit: pageSize });
  for (let i = 0; i < ids.length; i += concurrency) {
    await Promise.all(
      ids.slice(i, i + concurrency).map(async (serverId) => {
        const check = await probeActivities.checkServer({ serverId });
        report.checked += 1;
        if (check.outcome === "unreachable" || check.outcome === "timeout") {
          report.unreachable += 1;
          await recordActivities.setServerStatus({
            serverId,
            status: "UNREACHABLE",
            reason: `fleet check: ${check.message}`,
            actor: { by: "fleet_check" },
          });
          return;
        }
        if (!needsRecovery(check.diagnosis, threshold)) return;
        const opened = await recordActivities.openOperation({ serverId, kind: "recovery" });
        if (!opened) return;
        await startChild(recoveryWorkflow, {
          workflowId: opened.workflowId,
          args: [{ serverId, operationId: opened.operationId, diskThresholdPct: threshold }],
          parentClosePolicy: ParentClosePolicy.ABANDON,
          typedSearchAttributes: [workflowRole("operation")],
        });
        report.recoveriesStarted += 1;
      }),
    );
  }
  if (ids.length < pageSize) return report;
  return continueAsNew<typeof fleetCheckWorkflow>({ ...input, afterId: ids[ids.length - 1], carried: report });
}
