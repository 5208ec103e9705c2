import { ApplicationFailure } from "@temporalio/workflow";
import type { Diagnosis, RecoveryInput, RecoveryReport } from "./definitions.js";
import { runOperation } from "./operation.js";
import { ProgressTracker } from "./progress.js";
import { sshActivities } from "./proxies.js";

function problems(d: Diagnosis, thresholdPct: number): string[] {
  const found = d.mounts.filter((m) => m.usedPct >= thresholdPct).map((m) => `${m.mount} ${m.usedPct}% used`);
  if (d.docker === "unresponsive") found.push("docker does not answer");
  return found;
}

/**
 * RecoverServer: diagnose (disk use per mount, Docker answering), remediate what
 * was found (prune unused Docker data and vacuum the journal when a disk is
 * full, restart a hung Docker), then verify and report what was done.
 */
export async function recoveryWorkflow(input: RecoveryInput): Promise<RecoveryReport> {
  const threshold = input.diskThresholdPct ?? 85;
  const progress = new ProgressTracker(input, "recovery");
  const server = { serverId: input.serverId };
  return runOperation(input, progress, async () => {
    const before = await progress.step("diagnose", async () => {
      const d = await sshActivities.diagnose(server);
      const found = problems(d, threshold);
      return { ...d, changed: false, detail: found.length ? found.join("; ") : "healthy" };
    });
    const actions: string[] = [];
    const diskFull = before.mounts.some((m) => m.usedPct >= threshold);
    if (diskFull && before.docker !== "absent") {
      actions.push((await progress.step("prune_docker", () => sshActivities.pruneDocker(server))).detail);
    }
    if (diskFull) {
      actions.push(
        (await progress.step("vacuum_journal", () => sshActivities.vacuumJournal({ ...server, maxMb: input.journalMaxMb ?? 200 }))).detail,
      );
    }
    if (before.docker === "unresponsive") {
      actions.push((await progress.step("restart_docker", () => sshActivities.restartDocker(server))).detail);
    }
    const after = await progress.step("verify", async () => {
      const d = await sshActivities.diagnose(server);
      const left = problems(d, threshold);
      if (left.length > 0)
        throw ApplicationFailure.nonRetryable(`still unhealthy after remediation: ${left.join("; ")}`, "RecoveryIncomplete");
      return { ...d, changed: false, detail: "healthy" };
    });
    const strip = ({ changed: _c, detail: _d, ...d }: Diagnosis & { changed: boolean; detail: string }): Diagnosis => d;
    return { before: strip(before), after: strip(after), actions, healthy: true };
  });
}
