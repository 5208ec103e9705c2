import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { hostExec } from "./testhosts.js";

/** One journal entry of a test host, as `journalctl -o json` writes it. */
export interface JournalEntry {
  MESSAGE?: string;
  _PID?: string;
  /** Microseconds since the epoch, when journald received it (the host shares this machine's clock). */
  __REALTIME_TIMESTAMP: string;
  [field: string]: unknown;
}

export interface JournalFollower {
  /** The first entry, written since the follower started, that `predicate` accepts (entries already seen included). */
  next(predicate: (entry: JournalEntry) => boolean): Promise<JournalEntry>;
  stop(): void;
}

/**
 * Follows a test host's journal from the moment of the call (a cursor taken first, so no entry
 * written after it is missed however late `journalctl -f` starts), filtered by journal matches
 * such as `SYSLOG_IDENTIFIER=sshd`.
 */
export function followJournal(hostName: string, matches: string[]): JournalFollower {
  const cursor = /^-- cursor: (\S+)$/m.exec(hostExec(hostName, "journalctl -n 0 --show-cursor -q"))?.[1];
  if (!cursor) throw new Error(`no journal cursor on ${hostName}`);
  const exec = join(process.cwd(), "scripts", "testhosts", "exec.sh");
  // Its own process group: nsenter and the journalctl it starts end together.
  const child = spawn("bash", [exec, hostName, "journalctl", "-f", "-o", "json", `--after-cursor=${cursor}`, ...matches], {
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
  });
  const seen: JournalEntry[] = [];
  const waiting = new Set<{ predicate: (entry: JournalEntry) => boolean; resolve: (entry: JournalEntry) => void }>();
  createInterface({ input: child.stdout }).on("line", (line) => {
    const entry = JSON.parse(line) as JournalEntry;
    seen.push(entry);
    for (const waiter of waiting) {
      if (!waiter.predicate(entry)) continue;
      waiting.delete(waiter);
      waiter.resolve(entry);
    }
  });
  return {
    next(predicate) {
      const found = seen.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiting.add({ predicate, resolve }));
    },
    stop() {
      if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGTERM");
    },
  };
}
