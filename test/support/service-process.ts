import { type ChildProcess, spawn } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** One `main.ts <role>` process in its own process group (setsid), its output kept in a file. */
export interface ServiceProcess {
  role: "api" | "worker";
  child: ChildProcess;
  logFile: string;
  /** Signals the whole process group. */
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL to the group, resolved once the process has exited. */
  kill(): Promise<void>;
  log(): string;
}

export function startServiceProcess(role: "api" | "worker", env: Record<string, string>, logDir: string, name: string): ServiceProcess {
  const logFile = join(logDir, `${name}.log`);
  const out = openSync(logFile, "a");
  const child = spawn(process.execPath, ["--import", "tsx", "app/main.ts", role], {
    env: { ...process.env, ...env },
    stdio: ["ignore", out, out],
    detached: true,
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const signal = (sig: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      // the group is already gone
    }
  };
  return {
    role,
    child,
    logFile,
    signal,
    async kill() {
      signal("SIGCONT");
      signal("SIGKILL");
      if (child.exitCode === null && child.signalCode === null) await exited;
    },
    log: () => readFileSync(logFile, "utf8"),
  };
}

/** Waits until an API process answers /healthz. */
export async function waitForHealthy(baseUrl: string, service: ServiceProcess, withinMs = 180_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (service.child.exitCode !== null) throw new Error(`${service.role} exited: ${service.log()}`);
    const ok = await fetch(`${baseUrl}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${baseUrl} did not become healthy: ${service.log()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Waits until a worker process logs that it polls its task queue. */
export async function waitForPolling(service: ServiceProcess, withinMs = 180_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (service.child.exitCode !== null) throw new Error(`worker exited: ${service.log()}`);
    if (service.log().includes("worker polling")) return;
    if (Date.now() > deadline) throw new Error(`worker did not start polling: ${service.log()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
