import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const scripts = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "scripts", "temporal-cluster");

export interface TemporalCluster {
  /** The frontend's host:port. */
  address: string;
  namespace: string;
  /** The server process (one process, every service; it leads its own process group). */
  pid: number;
  /** Config, log and pid file. */
  dir: string;
  /** Milliseconds up.sh took: schema setup, start and the namespace's registration. */
  startMs: number;
  stop(): Promise<void>;
}

/** Builds the server once (a cached build; minutes of CPU the first time). */
export function installTemporalServer(): string {
  return execFileSync("bash", [join(scripts, "install.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

/**
 * A real Temporal server (go.temporal.io/server, built by scripts/temporal-cluster/install.sh) on
 * the given PostgreSQL, with SQL visibility, the namespace registered and our search attributes
 * added: scripts/temporal-cluster/up.sh in a temporary folder; `stop` ends its process group
 * (down.sh) and removes the folder. Ended on this process's exit too, should a test not get there.
 */
export function startTemporalCluster(databaseUrl: string, options: { namespace?: string; databases?: string } = {}): TemporalCluster {
  installTemporalServer();
  const dir = mkdtempSync(join(tmpdir(), "axion-temporal-cluster-"));
  const namespace = options.namespace ?? "axion";
  const down = () => execFileSync("bash", [join(scripts, "down.sh"), dir], { stdio: "ignore" });
  process.once("exit", down);
  const started = Date.now();
  let address: string;
  try {
    address = execFileSync(
      "bash",
      [
        join(scripts, "up.sh"),
        "--database-url",
        databaseUrl,
        "--namespace",
        namespace,
        "--databases",
        options.databases ?? "temporal",
        dir,
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 5 * 60_000 },
    )
      .trim()
      .split("\n")
      .at(-1) as string;
  } catch (error) {
    down();
    process.off("exit", down);
    throw error;
  }
  return {
    address,
    namespace,
    pid: Number(readFileSync(join(dir, "temporal.pid"), "utf8")),
    dir,
    startMs: Date.now() - started,
    stop: async () => {
      down();
      process.off("exit", down);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
