import type { Diagnosis, StepResult } from "../workflows/definitions.js";
import type { ActivityDeps } from "./deps.js";
import { diagnoseScript, parseStepOutput, pruneDockerScript, restartDockerScript, vacuumJournalScript } from "./host-scripts.js";
import { heartbeating, withServerSession } from "./server-access.js";
import type { ShellFragment } from "./ssh/shell.js";

export function parseDiagnosis(stdout: string): Diagnosis {
  const mounts = new Map<string, { mount: string; usedPct: number; availableMb: number }>();
  let docker: Diagnosis["docker"] = "absent";
  let journalMb = 0;
  for (const line of stdout.split("\n")) {
    const [kind, a, b, c] = line.trim().split(/\s+/);
    if (kind === "mount" && a) mounts.set(a, { mount: a, usedPct: Number(b), availableMb: Number(c) });
    else if (kind === "docker" && (a === "responsive" || a === "unresponsive" || a === "absent")) docker = a;
    else if (kind === "journal_mb") journalMb = Number(a) || 0;
  }
  return { mounts: [...mounts.values()], docker, journalMb };
}

/** Recovery activities: look, then act on what was seen. */
export function createRecoveryActivities(deps: ActivityDeps) {
  const run = (serverId: string, script: ShellFragment, timeoutMs: number) =>
    withServerSession(deps, serverId, async (session) => {
      const { stdout } = await heartbeating(() => session.run(script, { timeoutMs }));
      return parseStepOutput(stdout) as StepResult;
    });
  return {
    diagnose: (input: { serverId: string }): Promise<Diagnosis> =>
      withServerSession(deps, input.serverId, async (session) =>
        parseDiagnosis((await session.run(diagnoseScript, { timeoutMs: 60_000 })).stdout),
      ),
    pruneDocker: (input: { serverId: string }) => run(input.serverId, pruneDockerScript, 10 * 60_000),
    vacuumJournal: (input: { serverId: string; maxMb: number }) => run(input.serverId, vacuumJournalScript(input.maxMb), 5 * 60_000),
    restartDocker: (input: { serverId: string }) => run(input.serverId, restartDockerScript, 3 * 60_000),
  };
}
