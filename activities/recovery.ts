import type { Diagnosis } from "../workflows/definitions.js";
import type { ActivityDeps } from "./deps.js";
import { diagnosisOf } from "./host-facts/diagnosis.js";
import { diagnoseScript, pruneDockerScript, restartDockerScript, vacuumJournalScript } from "./host-scripts.js";
import { remoteStep } from "./provisioning.js";
import { withServerSession } from "./server-access.js";
import { heartbeating, runRemoteStep } from "./ssh/remote-step.js";
import type { SshSession } from "./ssh/session.js";

/** Disk use per mount, Docker answering, journal size (read-only): the recovery's diagnosis and a plan's check. */
export async function readDiagnosis(session: SshSession): Promise<Diagnosis> {
  return diagnosisOf((await runRemoteStep(session, diagnoseScript, { timeoutMs: 60_000, step: "diagnose" })).stdout);
}

/** The diagnosis in a session of its own, through the remote-step helper. */
export function diagnose(deps: ActivityDeps, serverId: string): Promise<Diagnosis> {
  return heartbeating(() => withServerSession(deps, serverId, readDiagnosis));
}

/** Recovery activities: look, then act on what was seen. */
export function createRecoveryActivities(deps: ActivityDeps) {
  return {
    diagnose: (input: { serverId: string }): Promise<Diagnosis> => diagnose(deps, input.serverId),
    pruneDocker: (input: { serverId: string }) =>
      remoteStep(deps, input.serverId, () => pruneDockerScript, { step: "prune_docker", timeoutMs: 10 * 60_000 }),
    vacuumJournal: (input: { serverId: string; maxMb: number }) =>
      remoteStep(deps, input.serverId, () => vacuumJournalScript(input.maxMb), { step: "vacuum_journal", timeoutMs: 5 * 60_000 }),
    restartDocker: (input: { serverId: string }) =>
      remoteStep(deps, input.serverId, () => restartDockerScript, { step: "restart_docker", timeoutMs: 3 * 60_000 }),
  };
}
