import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestHost } from "./testhosts.js";

/**
 * A compromised test host: a wrapper in /usr/local/bin (ahead of /usr/bin and /usr/sbin in
 * sshd's and sudo's PATH) answers for one command in one hostile mode; `off` removes it and the
 * real command answers again. Written straight into the host's overlay, so one host is switched
 * between modes in a moment.
 */

export const hostileCommands = ["uname", "cat", "df", "sshd", "docker", "systemctl", "id", "sha256sum"] as const;
export type HostileCommand = (typeof hostileCommands)[number];

export type HostileMode =
  /** Prints exactly these bytes (a traversal string, escapes, NULs) and exits 0. */
  | { print: string | Buffer }
  /** 10 MB on one line, then exits 0. */
  | "huge"
  /** Never stops printing. */
  | "endless"
  /** Sleeps for an hour, printing nothing. */
  | "sleep"
  | "off";

/** ESC sequences (clear screen, OSC 52 clipboard write, a colour), a C1 CSI, U+202E, a NUL and a newline. */
export const ESCAPES = "\u001b[2J\u001b]52;c;cHduZWQ=\u0007\u001b[31mred\u009b1m\u202ertl\u0000nul\nsecond line\n";

const script = (mode: Exclude<HostileMode, "off">, textFile: string): string => {
  const body =
    mode === "huge"
      ? "/usr/bin/head -c 10485760 /dev/zero | /usr/bin/tr '\\0' A"
      : mode === "endless"
        ? "exec /usr/bin/yes 'x/../../../etc/passwd AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'"
        : mode === "sleep"
          ? "exec /usr/bin/sleep 3600"
          : `exec /usr/bin/head -c 100000000 ${textFile}`;
  return `#!/bin/sh\n${body}\n`;
};

/** Makes `command` answer in `mode` on `host` (or the real command again: "off"). */
export function hostile(host: TestHost, command: HostileCommand, mode: HostileMode): void {
  const bin = join(host.root, "usr/local/bin", command);
  const textFile = `/etc/axion-hostile/${command}.text`;
  if (mode === "off") {
    rmSync(bin, { force: true });
    return;
  }
  if (typeof mode === "object") {
    mkdirSync(join(host.root, "etc/axion-hostile"), { recursive: true });
    writeFileSync(join(host.root, textFile), mode.print);
  }
  writeFileSync(bin, script(mode, textFile), { mode: 0o755 });
  chmodSync(bin, 0o755);
}

/** Every wrapper removed: the host answers truthfully again. */
export function honest(host: TestHost): void {
  for (const command of hostileCommands) hostile(host, command, "off");
}
