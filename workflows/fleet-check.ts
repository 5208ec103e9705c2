import { ParentClosePolicy, startChild } from "@temporalio/workflow";
import type { Diagnosis } from "./definitions.js";
import { probeActivities, recordActivities } from "./proxies.js";
import { recoveryWorkflow } from "./recovery.js";

export interface FleetCheckInput {
  diskThresholdPct?: number;
  /** Servers checked at once. */
  concurrency?: number;
}

export interface FleetCheckReport {
  checked: number;
  unreachable: string[];
  recoveriesStarted: string[];
}

const PAGE = 200;

function needsRecovery(d: Diagnosis | undefined, thresholdPct: number): boolean {
  return !!d && (d.docker === "unresponsive" || d.mounts.some((m) => m.usedPct >= thresholdPct));
}

/**
 * Run by the `fleet-check` Temporal Schedule: tests every server, marks the
 * unreachable ones, and starts a recovery workflow where the check finds a full
 * disk or a hung Docker (unless the server is busy with another operation).
 */
export async function fleetCheckWorkflow(input: FleetCheckInput = {}): Promise<FleetCheckReport> {
  const threshold = input.diskThresholdPct ?? 85;
  const concurrency = input.concurrency ?? 10;
  const report: FleetCheckReport = { checked: 0, unreachable: [], recoveriesStarted: [] };
  let afterId: string | undefined;
  for (;;) {
    const ids = await recordActivities.listServersToCheck({ afterId, limit: PAGE });
    for (let i = 0; i < ids.length; i += concurrency) {
      await Promise.all(
        ids.slice(i, i + concurrency).map(async (serverId) => {
          const check = await probeActivities.checkServer({ serverId });
          report.checked += 1;
          if (check.outcome === "unreachable" || check.outcome === "timeout") {
            report.unreachable.push(serverId);
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
          });
          report.recoveriesStarted.push(serverId);
        }),
      );
    }
    if (ids.length < PAGE) return report;
    afterId = ids[ids.length - 1];
  }
}
