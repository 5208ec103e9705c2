/**
 * What the benchmarks share: the Axion stack (a throwaway PostgreSQL, a Temporal dev server from
 * temporal-dev.yml, the API in this process, the worker in a child process: bench/worker.ts),
 * test-host fleets, and CPU accounting from /proc split by process.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Client, Connection } from "@temporalio/client";
import postgres from "postgres";
import type { EdgeLimits } from "../api/edge-limits.js";
import { type Cidr, createNetworkPolicy, type NetworkPolicy, parseCidr } from "../core/security/network-policy.js";
import { openDatabase } from "../db/client.js";
import { startDevServer } from "../temporal/dev-server.js";
import { startTestApi, testCredentialsKey } from "../test/support/api.js";
import { ed25519KeyPair } from "../test/support/keys.js";
import { freePort } from "../test/support/ports.js";
import { startPostgres } from "../test/support/postgres.js";
import { startTemporalCluster } from "../test/support/temporal-cluster.js";
import { downHosts, type Fleet, upHosts } from "../test/support/testhosts.js";

const execFileAsync = promisify(execFile);
export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const say = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
export const round1 = (v: number | undefined) => (v === undefined ? undefined : Math.round(v * 10) / 10);
/** The key the bench worker installs as the orchestrator's deploy key. */
export const ORCHESTRATOR_KEY = ed25519KeyPair().publicKey.trim();
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

// --- CPU ----------------------------------------------------------------------------------------
const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));
/** user + system CPU seconds of one process (itself, not its children). */
export function processCpuS(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** Processes whose command line contains every one of `parts` (NUL-separated argv joined by spaces). */
export function findPids(...parts: string[]): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ");
      if (parts.every((p) => cmdline.includes(p))) found.push(Number(entry));
    } catch {
      /* exited */
    }
  }
  return found;
}

/** CPU seconds of whole process trees: utime+stime of every live process, plus cutime+cstime (children already reaped). */
export function treeCpuS(roots: number[]): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(entry), Number(f[1]));
      cpu.set(Number(entry), (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / clockTicks);
    } catch {
      /* exited */
    }
  }
  const rootSet = new Set(roots);
  let total = 0;
  for (const [pid, seconds] of cpu) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p)) {
      if (rootSet.has(p)) {
        total += seconds;
        break;
      }
    }
  }
  return total;
}

/** CPU seconds used inside the hosts so far: their cgroups (v1 cpuacct, or v2 cpu.stat). */
export function hostsCpuS(fleet: Fleet): number | undefined {
  let total = 0;
  for (const host of fleet.hosts) {
    const v1 = `/sys/fs/cgroup/cpuacct/axion/${host.name}/cpuacct.usage`;
    const v2 = `/sys/fs/cgroup/axion/${host.name}/cpu.stat`;
    if (existsSync(v1)) total += Number(readFileSync(v1, "utf8")) / 1e9;
    else if (existsSync(v2)) total += Number(readFileSync(v2, "utf8").match(/usage_usec (\d+)/)?.[1] ?? 0) / 1e6;
    else return undefined;
  }
  return total;
}

/** Machine-wide busy and total jiffies (/proc/stat), to tell how saturated the 2 cores were. */
export function machineCpu(): { busy: number; total: number } {
  const [, ...values] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  const v = values.map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
}
export const busyPct = (a: { busy: number; total: number }, b: { busy: number; total: number }) =>
  Math.round(((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 1000) / 10;

/**
 * Hosts booted from a copy of the test-host image with docker.io installed and enabled
 * (bench/docker-image.sh, built once): Docker present and running, as on a provider image that ships it.
 */
let dockerImage: string | undefined;
export function dockerImagePath(): string {
  dockerImage ??= execFileSync("bash", [join(root, "bench", "docker-image.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    timeout: 15 * 60_000,
  }).trim();
  return dockerImage;
}

/** N fresh test hosts of `prefix` (any left by an earlier run are torn down first), optionally from `image`. */
export async function freshFleet(
  prefix: string,
  n: number,
  image?: string,
  upOptions: string[] = [],
): Promise<{ fleet: Fleet; upMs: number }> {
  downHosts(prefix);
  const started = Date.now();
  if (image) process.env.AXION_TESTHOST_IMAGE = image; // read by scripts/testhosts/up.sh
  let fleet: Fleet;
  try {
    fleet = upHosts(prefix, n, "fresh", upOptions);
  } finally {
    delete process.env.AXION_TESTHOST_IMAGE;
  }
  const upMs = Date.now() - started;
  if (fleet.hosts.length !== n) throw new Error(`${prefix}: ${fleet.hosts.length} hosts up, ${n} wanted`);
  return { fleet, upMs };
}

export interface AxionStack {
  client: Client;
  api: Awaited<ReturnType<typeof startTestApi>>;
  workerPid: number;
  /** Temporal server and PostgreSQL (postmaster): with the worker and this process (the API), Axion's whole CPU. */
  servicePids: number[];
  /** Which Temporal server runs the workflows, for the printed figures. */
  temporalKind: TemporalChoice["kind"];
  /** Rows written and transactions (reads too) committed so far in the real server's databases (undefined on the dev server's SQLite). */
  temporalWrites(): Promise<TemporalWrites | undefined>;
  close(): Promise<void>;
}

/**
 * The Temporal server of a benchmark: the CLI's dev server (SQLite, the default), a real server
 * started on the benchmark's PostgreSQL (scripts/temporal-cluster/up.sh), or one already running
 * at an address (its CPU is counted when its process is found on this machine).
 */
export type TemporalChoice = { kind: "dev" } | { kind: "cluster" } | { kind: "external"; address: string; namespace: string };

export interface TemporalWrites {
  rows: number;
  commits: number;
}

export interface StackOptions {
  limits?: Partial<EdgeLimits>;
  /** Node flags for the worker process (`--cpu-prof`, ...). */
  workerNodeArgs?: string[];
  /** SERVER_ADDRESS_ALLOW of the API and the worker (CIDRs), e.g. to admit silent hosts on 127.0.0.2. */
  serverAddressAllow?: string[];
  temporal?: TemporalChoice;
}

/** The network policy of a SERVER_ADDRESS_ALLOW list (the built-in policy when it is absent). */
export function allowPolicy(cidrs: string[] | undefined): NetworkPolicy | undefined {
  return cidrs ? createNetworkPolicy({ allow: cidrs.map((c) => parseCidr(c) as Cidr) }) : undefined;
}

export async function startAxion(options: StackOptions = {}): Promise<AxionStack> {
  const stops: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop().catch((e) => say(`shutdown: ${String(e)}`));
  };
  try {
    const pg = await startPostgres();
    stops.push(() => pg.stop());
    const dataDir = mkdtempSync(join(tmpdir(), "axion-bench-"));
    stops.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const temporal = await startTemporal(options.temporal ?? { kind: "dev" }, dataDir, pg.url);
    stops.push(temporal.stop);
    const database = await openDatabase({ databaseUrl: pg.url, dataDir: "memory://", poolSize: 20 });
    await database.migrate();
    const connection = await Connection.connect({ address: temporal.address });
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace: temporal.namespace });
    const taskQueue = "axion-bench";
    const api = await startTestApi({
      database,
      workflows: { client, taskQueue },
      limits: options.limits,
      networkPolicy: allowPolicy(options.serverAddressAllow),
    });
    stops.push(() => api.close()); // closes the database too

    const worker: ChildProcess = spawn(
      process.execPath,
      [...(options.workerNodeArgs ?? []), "--import", "tsx", join(root, "bench", "worker.ts")],
      {
        stdio: ["ignore", "inherit", "inherit", "ipc"],
        env: {
          ...process.env,
          BENCH_TEMPORAL_ADDRESS: temporal.address,
          BENCH_TEMPORAL_NAMESPACE: temporal.namespace,
          BENCH_TASK_QUEUE: taskQueue,
          BENCH_DATABASE_URL: pg.url,
          BENCH_CREDENTIALS_KEY: testCredentialsKey,
          BENCH_ORCHESTRATOR_KEY: ORCHESTRATOR_KEY,
          ...(options.serverAddressAllow ? { BENCH_SERVER_ADDRESS_ALLOW: options.serverAddressAllow.join(",") } : {}),
        },
      },
    );
    const exited = new Promise<void>((r) => worker.once("exit", () => r()));
    stops.push(async () => {
      if (worker.exitCode === null && worker.signalCode === null) worker.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (worker.exitCode === null && worker.signalCode === null) worker.kill("SIGKILL");
    });
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("exit", (code) => reject(new Error(`bench worker exited with ${code} before it was ready`)));
    });
    const temporalPid = temporal.pid ?? findPids("start-dev", dataDir)[0];
    const postgresPids = findPids("postgres", "-p", `${new URL(pg.url).port}`, "-D");
    if (temporalPid === undefined) say("warning: the Temporal server's process is not on this machine: its CPU is not counted");
    if (postgresPids.length !== 1) say(`warning: found ${postgresPids.length} of 1 PostgreSQL postmaster for CPU accounting`);
    // A pid that is no process counts as 0 CPU-s: the positions (Temporal first) stay.
    const servicePids = [temporalPid ?? -1, ...postgresPids];
    const temporalWrites = async (): Promise<TemporalWrites | undefined> => {
      if (temporal.databases.length === 0) return undefined;
      const stats = postgres(pg.url, { max: 1, onnotice: () => {} });
      try {
        const [row] = await stats`select coalesce(sum(tup_inserted + tup_updated + tup_deleted), 0)::float8 as rows,
          coalesce(sum(xact_commit), 0)::float8 as commits from pg_stat_database where datname in ${stats(temporal.databases)}`;
        return { rows: row!.rows, commits: row!.commits };
      } finally {
        await stats.end();
      }
    };
    return { client, api, workerPid: worker.pid!, servicePids, temporalKind: temporal.kind, temporalWrites, close };
  } catch (error) {
    await close();
    throw error;
  }
}

interface StartedTemporal {
  kind: TemporalChoice["kind"];
  address: string;
  namespace: string;
  pid?: number;
  /** The real server's own databases, whose writes are counted. */
  databases: string[];
  stop(): Promise<unknown>;
}

async function startTemporal(choice: TemporalChoice, dataDir: string, databaseUrl: string): Promise<StartedTemporal> {
  if (choice.kind === "external") {
    const port = Number(choice.address.split(":").at(-1));
    return { ...choice, pid: listenerPid(port), databases: [], stop: async () => {} };
  }
  if (choice.kind === "cluster") {
    const cluster = startTemporalCluster(databaseUrl);
    say(`real Temporal server ${cluster.address} (pid ${cluster.pid}) up in ${(cluster.startMs / 1000).toFixed(1)} s`);
    const databases = ["temporal", "temporal_visibility"];
    return { kind: "cluster", address: cluster.address, namespace: cluster.namespace, pid: cluster.pid, databases, stop: cluster.stop };
  }
  const dev = await startDevServer(dataDir, { port: await freePort(), uiPort: await freePort(), headless: true });
  return { kind: "dev", address: dev.address, namespace: dev.spec.namespace, pid: dev.pid, databases: [], stop: dev.stop };
}

/** The process listening on 127.0.0.1:`port` or any address (by its socket's inode in /proc), if it is on this machine. */
function listenerPid(port: number): number | undefined {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of (existsSync(table) ? readFileSync(table, "utf8") : "").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(hex) && f[3] === "0A") inodes.add(`socket:[${f[9]}]`);
    }
  }
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      for (const fd of readdirSync(`/proc/${entry}/fd`)) if (inodes.has(readlinkSync(`/proc/${entry}/fd/${fd}`))) return Number(entry);
    } catch {
      /* exited, or not ours to read */
    }
  }
  return undefined;
}

/** CPU seconds of each part of the orchestrator so far (the API's figure includes this process's client and samplers). */
export interface StackCpu {
  worker: number;
  temporal: number;
  postgres: number;
  api: number;
}

export function stackCpu(stack: AxionStack): StackCpu {
  const self = process.cpuUsage();
  return {
    worker: processCpuS(stack.workerPid),
    temporal: treeCpuS(stack.servicePids.slice(0, 1)),
    postgres: treeCpuS(stack.servicePids.slice(1)),
    api: (self.user + self.system) / 1e6,
  };
}

export function cpuSince(before: StackCpu, after: StackCpu): StackCpu & { total: number } {
  const d = {
    worker: after.worker - before.worker,
    temporal: after.temporal - before.temporal,
    postgres: after.postgres - before.postgres,
    api: after.api - before.api,
  };
  return { ...d, total: d.worker + d.temporal + d.postgres + d.api };
}

/** "0.412 CPU-s per host (worker 0.170, Temporal 0.190, PostgreSQL 0.020, API 0.032)" */
export function perHost(cpu: StackCpu & { total: number }, n: number): string {
  const f = (v: number) => (v / n).toFixed(3);
  return `${f(cpu.total)} CPU-s per host (worker ${f(cpu.worker)}, Temporal ${f(cpu.temporal)}, PostgreSQL ${f(cpu.postgres)}, API ${f(cpu.api)})`;
}

/** A configured host, as both tools must leave it: checked after the clock stops. */
const verifyScript = `set -e
systemctl is-active --quiet docker; docker info >/dev/null 2>&1
sudo -l -U axion | grep -q 'NOPASSWD: ALL'; test "$(stat -c %a /etc/sudoers.d/90-axion-axion)" = 440
nft list table inet axion_filter | grep -q 'tcp dport 22 accept'
sshd -T | grep -qix 'passwordauthentication no'; test -f /etc/ssh/sshd_config.d/10-axion-hardening.conf
grep -qxF "$1" /home/axion/.ssh/authorized_keys; test "$(stat -c %a /home/axion/.ssh)" = 700
echo verified`;

export async function verifyHosts(fleet: Fleet): Promise<string[]> {
  const problems: string[] = [];
  await mapLimit(fleet.hosts, 4, async (host) => {
    try {
      await execFileAsync(
        "bash",
        [join(root, "scripts", "testhosts", "exec.sh"), host.name, "sh", "-c", verifyScript, "sh", ORCHESTRATOR_KEY],
        {
          timeout: 60_000,
        },
      );
    } catch (error) {
      problems.push(
        `${host.name}: not configured (${String((error as { stderr?: string }).stderr ?? error)
          .trim()
          .slice(0, 200)})`,
      );
    }
  });
  return problems;
}

/** ansible.cfg (forks, pipelining, ControlPersist masters under `cpDir`) and inventory.ini for `fleet` in `dir`. */
export function writeAnsibleFiles(dir: string, cpDir: string, fleet: Fleet, forks: number): void {
  writeFileSync(
    join(dir, "ansible.cfg"),
    `[defaults]
forks = ${forks}
host_key_checking = False
private_key_file = ${fleet.privateKeyPath}
interpreter_python = /usr/bin/python3
retry_files_enabled = False
deprecation_warnings = False

[ssh_connection]
pipelining = True
control_path_dir = ${cpDir}
ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
`,
  );
  writeFileSync(
    join(dir, "inventory.ini"),
    `[bench]\n${fleet.hosts.map((h) => `${h.name} ansible_host=${h.ip} ansible_port=${h.port} ansible_user=${h.user}`).join("\n")}\n`,
  );
}
