import type { Diagnosis, MountUsage } from "../../workflows/definitions.js";
import { badAnswer, oneLine, wholeNumber } from "./answer.js";

/** At most this many mounts are reported; a host listing more is refused. */
export const MAX_MOUNTS = 64;
const dockerStates = ["responsive", "unresponsive", "stopped", "absent"] as const;

/**
 * The recovery's diagnosis (activities/host-scripts.ts diagnoseScript): lines
 * `mount <path> <used %> <available MB>` from df, `docker <state>`, `journal_mb <n>`.
 * Every line is bounded and must be one of these.
 */
export function diagnosisOf(stdout: string): Diagnosis {
  const mounts = new Map<string, MountUsage>();
  let docker: Diagnosis["docker"] | undefined;
  let journalMb = 0;
  const lines = stdout.split("\n").filter((l) => l !== "");
  for (const line of lines) {
    const [kind = ""] = line.split(" ", 1);
    if (kind === "mount") {
      const text = oneLine("df", Buffer.from(line), 300, /^mount \/\S{0,255} \d{1,3} \d{1,15}$/, "a mount line (path, used %, MB free)");
      const [, mount = "", used = "", free = ""] = text.split(" ");
      mounts.set(mount, { mount, usedPct: wholeNumber("df used %", used, 100), availableMb: wholeNumber("df available", free, 1e15) });
      if (mounts.size > MAX_MOUNTS) throw badAnswer("df", `listed more than ${MAX_MOUNTS} mounts`);
    } else if (kind === "docker") {
      const state = dockerStates.find((s) => line === `docker ${s}`);
      if (!state) throw badAnswer("docker state", "is none of its known states", line);
      docker = state;
    } else if (kind === "journal_mb") {
      journalMb = wholeNumber("du /var/log/journal", line.slice("journal_mb ".length), 1e12);
    } else {
      throw badAnswer("diagnosis", "answered a line that is none of its facts", line);
    }
  }
  if (mounts.size === 0) throw badAnswer("df", "listed no mount");
  if (!docker) throw badAnswer("docker state", "no answer");
  return { mounts: [...mounts.values()], docker, journalMb };
}
