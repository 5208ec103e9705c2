import type { Diagnosis } from "../workflows/definitions.js";
import type { ActivityDeps } from "./deps.js";
import { diagnoseScript, pruneDockerScript, restartDockerScript, vacuumJournalScript } from "./host-scripts.js";
import { remoteStep } from "./provisioning.js";
import { withServerSession } from "./server-access.js";
import { heartbeating, runRemoteStep } from "./ssh/remote-step.js";
import type { SshSession } from "./ssh/session.js";

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

/** Disk use per mount, Docker answering, journal size (read-only): the recovery's diagnosis and a plan's check. */
export async function readDiagnosis(session: SshSession): Promise<Diagnosis> {
  return parseDiagnosis((await runRemoteStep(session, diagnoseScript, { timeoutMs: 60_000, step: "diagnose" })).stdout);
}

/** The diagnosis in a session of its own, through the remote-step helper. */
export function diagnose(deps: ActivityDeps, serverId: string): Promise<Diagnosis> {
  return heartbeating(() => withServerSession(deps, serverId, readDiagnosis));
}

/** Recovery activities: look, then act on what was seen. */
export function createRecoveryActivities(deps: ActivityDeps) {
  return {
    diagnose: (input: { serverId: string }): Promise<Diagnosis> => diagnose(deps, input.serverId),
    pruneDocker: (input: { serverId: string }) => remoteStep(deps, input.serverId, () => pruneDockerScript, { timeoutMs: 10 * 60_000 }),
    vacuumJournal: (input: { serverId: string; maxMb: number }) =>
      remoteStep(deps, input.serverId, () => vacuumJournalScript(input.maxMb), { timeoutMs: 5 * 60_000 }),
    restartDocker: (input: { serverId: string }) => remoteStep(deps, input.serverId, () => restartDockerScript, { timeoutMs: 3 * 60_000 }),
  };
}
