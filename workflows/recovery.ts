import { ApplicationFailure } from "@temporalio/workflow";
import type { Diagnosis, RecoveryInput, RecoveryReport } from "./definitions.js";
import { runOperation } from "./operation.js";
import { ProgressTracker } from "./progress.js";
import { sshActivities } from "./proxies.js";
import { DEFAULT_DISK_THRESHOLD_PCT, DEFAULT_JOURNAL_MAX_MB, problems, remediations } from "./remediation.js";

/**
 * RecoverServer: diagnose (disk use per mount, Docker answering), remediate what
 * was found (prune unused Docker data and vacuum the journal when a disk is
 * full, restart a hung Docker), then verify and report what was done.
 */
export async function recoveryWorkflow(input: RecoveryInput): Promise<RecoveryReport> {
  const threshold = input.diskThresholdPct ?? DEFAULT_DISK_THRESHOLD_PCT;
  const journalMaxMb = input.journalMaxMb ?? DEFAULT_JOURNAL_MAX_MB;
  const progress = new ProgressTracker(input, "recovery");
  const server = { serverId: input.serverId };
  return runOperation(input, progress, async () => {
    const before = await progress.step("diagnose", async () => {
      const d = await sshActivities.diagnose(server);
      const found = problems(d, threshold);
      return { ...d, changed: false, detail: found.length ? found.join("; ") : "healthy" };
    });
    const actions: string[] = [];
    const needed = new Set(remediations(before, threshold, journalMaxMb).flatMap((r) => (r.needed ? [r.name] : [])));
    if (needed.has("prune_docker")) {
      actions.push((await progress.step("prune_docker", () => sshActivities.pruneDocker(server))).detail);
    }
    if (needed.has("vacuum_journal")) {
      actions.push((await progress.step("vacuum_journal", () => sshActivities.vacuumJournal({ ...server, maxMb: journalMaxMb }))).detail);
    }
    if (needed.has("restart_docker")) {
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
