import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { dirname, join } from "node:path";
import type { Fleet, TestHost } from "./testhosts.js";

/**
 * A gate on a test host that holds a step where the test wants it: a program the
 * step runs (a wrapper ahead of the real one on root's PATH, or a dpkg hook)
 * connects to the test when it is reached and waits until the test releases it.
 * The test learns of it by the connection (a promise, nothing sampled); the step
 * stays there until `release()`, however fast the machine is.
 */
export interface HostGate {
  /** Resolves when a step reached the gate (rejects after `timeoutMs`). */
  reached: Promise<void>;
  /** Lets every held and later run pass, and takes the gate's files off the host. */
  release(): Promise<void>;
}

interface GateFiles {
  /** Path on the host of the gate program. */
  program: string;
  /** Shell condition: the gate holds only when it is true (default: always). */
  when?: string;
  /** What the program does once let through (default: exit 0). */
  afterwards?: string;
  /** Other files that put the program in the step's way (path on the host → content). */
  config?: Record<string, string>;
}

async function installGate(fleet: Fleet, host: TestHost, files: GateFiles, timeoutMs: number): Promise<HostGate> {
  const held = new Set<Socket>();
  let reach!: () => void;
  const reachedOnce = new Promise<void>((resolve) => {
    reach = resolve;
  });
  const server = createServer((socket) => {
    socket.unref();
    held.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => held.delete(socket));
    reach();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, fleet.gateway, resolve);
  });
  server.unref(); // a failed test ends without releasing: the gate must not keep the process alive
  const { port } = server.address() as { port: number };
  const onHost = (path: string) => join(host.root, path);
  // bash's /dev/tcp: no tool needed on the host. A refused connection (the gate released) lets it pass.
  const program = `#!/bin/bash
# test gate (test/support/host-gate.ts): holds this step until the test lets it pass
if ${files.when ?? "true"}; then
  if { exec 3<>/dev/tcp/${fleet.gateway}/${port}; } 2>/dev/null; then read -r _ <&3 || true; exec 3<&-; fi
fi
${files.afterwards ?? "exit 0"}
`;
  // Replaced by rename, never rewritten in place: bash reads a script as it runs, and one may be held in it.
  const put = (path: string, content: string, mode: number) => {
    mkdirSync(dirname(onHost(path)), { recursive: true });
    writeFileSync(`${onHost(path)}.tmp`, content, { mode });
    renameSync(`${onHost(path)}.tmp`, onHost(path));
  };
  put(files.program, program, 0o755);
  for (const [path, content] of Object.entries(files.config ?? {})) put(path, content, 0o644);

  let timer: NodeJS.Timeout | undefined;
  const reached = Promise.race([
    reachedOnce,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no step reached the gate ${files.program} on ${host.name} in ${timeoutMs} ms`)),
        timeoutMs,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  reached.catch(() => {});
  return {
    reached,
    async release() {
      clearTimeout(timer);
      for (const path of Object.keys(files.config ?? {})) rmSync(onHost(path), { force: true });
      // A hook stays a pass-through: a dpkg that read its configuration before still runs it.
      if (files.config) put(files.program, `#!/bin/sh\n${files.afterwards ?? "exit 0"}\n`, 0o755);
      else rmSync(onHost(files.program), { force: true });
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of held) socket.end("go\n");
      await closed;
    },
  };
}

/** Holds the first run of `command` (e.g. "useradd") on the host, then runs the real one. */
export function holdCommand(fleet: Fleet, host: TestHost, command: string, realPath: string, timeoutMs = 120_000): Promise<HostGate> {
  // /usr/local/sbin comes first on root's PATH over SSH and under sudo.
  return installGate(fleet, host, { program: `/usr/local/sbin/${command}`, afterwards: `exec ${realPath} "$@"` }, timeoutMs);
}

/**
 * Holds dpkg when it starts to configure packages: apt and dpkg are running, the
 * packages unpacked and not configured (what a killed install leaves behind).
 */
export function holdDpkgConfigure(fleet: Fleet, host: TestHost, timeoutMs = 300_000): Promise<HostGate> {
  const program = "/usr/local/sbin/axion-test-gate";
  return installGate(
    fleet,
    host,
    {
      program,
      when: '[ "$DPKG_HOOK_ACTION" = configure ]',
      config: { "/etc/dpkg/dpkg.cfg.d/axion-test-gate": `pre-invoke=${program}\n` },
    },
    timeoutMs,
  );
}
