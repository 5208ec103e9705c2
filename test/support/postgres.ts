import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { freePort } from "./ports.js";

export interface TestPostgres {
  url: string;
  /** Freezes every PostgreSQL process (SIGSTOP), as a stalled database would be; `resume` thaws them. */
  pause(): void;
  resume(): void;
  /** Shuts the server down (a clean stop), its data kept; `restart` starts it again on the same port. */
  halt(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function postgresBinDir(): string {
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(a) - Number(b)) : [];
  const latest = versions.at(-1);
  if (!latest) throw new Error("PostgreSQL server binaries not found under /usr/lib/postgresql: apt-get install postgresql");
  return join(base, latest, "bin");
}

/** PostgreSQL refuses to run as root; as root, its binaries run as the Debian `postgres` user. */
function postgresUser(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  return { uid: Number(execFileSync("id", ["-u", "postgres"]).toString()), gid: Number(execFileSync("id", ["-g", "postgres"]).toString()) };
}

async function waitUntilReady(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited with code ${child.exitCode}`);
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql`select 1`;
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await sql.end({ timeout: 1 });
    }
  }
}

/**
 * A real, throwaway PostgreSQL server (Debian's binaries) in a temporary folder on
 * a free loopback port. TEST_DATABASE_URL, when set, is used instead.
 */
export async function startPostgres(): Promise<TestPostgres> {
  if (process.env.TEST_DATABASE_URL) {
    const unsupported = () => {
      throw new Error("pause, resume, halt and restart need the test's own PostgreSQL (unset TEST_DATABASE_URL)");
    };
    return {
      url: process.env.TEST_DATABASE_URL,
      pause: unsupported,
      resume: unsupported,
      halt: async () => unsupported(),
      restart: async () => unsupported(),
      stop: async () => {},
    };
  }
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), "axion-pg-"));
  const user = postgresUser();
  if (user.uid !== undefined && user.gid !== undefined) chownSync(dir, user.uid, user.gid);
  const data = join(dir, "data");
  execFileSync(join(bin, "initdb"), ["-D", data, "-U", "axion", "--auth=trust", "-E", "UTF8", "--no-sync"], {
    stdio: "ignore",
    cwd: dir,
    ...user,
  });
  const port = await freePort();
  const spawnServer = () =>
    spawn(
      join(bin, "postgres"),
      ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
      { stdio: "ignore", cwd: dir, ...user },
    );
  let child = spawnServer();
  const url = `postgres://axion@127.0.0.1:${port}/postgres`;
  await waitUntilReady(url, child);
  const halt = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGINT");
    await exited;
  };
  const signalAll = (signal: NodeJS.Signals) => {
    const children = execFileSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
    for (const pid of [child.pid as number, ...children]) process.kill(pid, signal);
  };
  return {
    url,
    pause: () => signalAll("SIGSTOP"),
    resume: () => signalAll("SIGCONT"),
    halt,
    restart: async () => {
      await halt();
      child = spawnServer();
      await waitUntilReady(url, child);
    },
    stop: async () => {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
