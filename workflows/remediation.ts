import type { Diagnosis } from "./definitions.js";

/** The recovery's decisions from a diagnosis: the workflow acts on them, a plan reports them. Pure, no I/O. */

export const DEFAULT_DISK_THRESHOLD_PCT = 85;
export const DEFAULT_JOURNAL_MAX_MB = 200;

export function problems(d: Diagnosis, thresholdPct: number): string[] {
  const found = d.mounts.filter((m) => m.usedPct >= thresholdPct).map((m) => `${m.mount} ${m.usedPct}% used`);
  if (d.docker === "unresponsive") found.push("docker does not answer");
  if (d.docker === "stopped") found.push("docker is stopped");
  return found;
}

export type RemediationName = "prune_docker" | "vacuum_journal" | "restart_docker";

export interface Remediation {
  name: RemediationName;
  needed: boolean;
  /** What it would do and why when needed, why not otherwise. */
  detail: string;
}

/** Each remediation in the order the recovery runs them, needed or not. */
export function remediations(d: Diagnosis, thresholdPct: number, journalMaxMb: number): Remediation[] {
  const full = d.mounts.filter((m) => m.usedPct >= thresholdPct).map((m) => `${m.mount} ${m.usedPct}% used`);
  const diskFull = full.length > 0;
  const notFull = `no mount at or above ${thresholdPct}% used`;
  return [
    {
      name: "prune_docker",
      needed: diskFull && d.docker !== "absent",
      detail: !diskFull ? notFull : d.docker === "absent" ? "docker absent" : `prune unused docker data: ${full.join(", ")}`,
    },
    {
      name: "vacuum_journal",
      needed: diskFull,
      detail: diskFull
        ? `vacuum the journal to ${journalMaxMb} MB (${d.journalMb} MB now), clean the apt cache: ${full.join(", ")}`
        : notFull,
    },
    {
      name: "restart_docker",
      needed: d.docker === "unresponsive" || d.docker === "stopped",
      detail:
        d.docker === "unresponsive"
          ? "restart docker: it does not answer"
          : d.docker === "stopped"
            ? "start docker: it is stopped"
            : `docker ${d.docker}`,
    },
  ];
}
