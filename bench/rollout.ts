/**
 * The fleet benchmark (`node --import tsx bench/rollout.ts`, root: it boots test hosts), one run:
 *   1. configure: N Docker-preinstalled hosts (bench/docker-image.sh) configured by Axion, batch
 *      100 %, against `ansible-playbook bench/ansible/bootstrap.yml` (serial 100 %, forks N) on
 *      another N such hosts;
 *   2. test connection: M fresh hosts, Axion's connection test on all of them at once against
 *      `ansible all -m ping -f M` on the same hosts (both read-only).
 * Prints wall time, the ratio and the orchestrator's CPU per host split by process (worker,
 * Temporal dev server, PostgreSQL, API with this process's client); JSON in bench/results/.
 *
 *   node --import tsx bench/rollout.ts [--configure-hosts 50] [--ping-hosts 200] [--skip configure|ping]
 *        [--wait watch|result] [--axion-runs watch,result,...] [--ansible configure,ping|none] [--profile-worker <dir>]
 *        [--temporal dev|cluster|HOST:PORT [--temporal-namespace axion]]
 *
 * The fleet is operated by one StartRollout (kind configure / test_connection, no canary, batch
 * 100 %) watched with WatchRollout until it ends (operateFleet). `--wait result` awaits the
 * rollout workflow's result instead (what the watch's per-second step queries cost);
 * `--axion-runs` repeats the Axion phase on the same hosts, once per mode listed (A/B on one fleet).
 * `--profile-worker <dir>`: the worker runs under `node --cpu-prof` (one profile per thread, in
 * <dir> when it exits); each phase prints its window for bench/profile-summary.ts --from/--to.
 * `--temporal`: the Temporal CLI's dev server (SQLite; the default), `cluster`: a real Temporal
 * server built from go.temporal.io/server on the benchmark's PostgreSQL (scripts/temporal-cluster/up.sh;
 * its rows written and commits per host are printed too), or HOST:PORT: a server already running
 * (e.g. started by up.sh; its CPU is counted when its process is on this machine).
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { setLogLevel } from "../core/kernel/log.js";
import { RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { RolloutServerState, RolloutStatus } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { downHosts, type Fleet } from "../test/support/testhosts.js";
import { threadCpuS } from "./cpu.js";
import {
  type AxionStack,
  busyPct,
  cpuSince,
  dockerImagePath,
  freshFleet,
  machineCpu,
  mapLimit,
  ORCHESTRATOR_KEY,
  perHost,
  root,
  say,
  stackCpu,
  startAxion,
  type TemporalChoice,
  verifyHosts,
  writeAnsibleFiles,
} from "./stack.js";

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const configureHosts = Number(option("--configure-hosts") ?? 50);
const pingHosts = Number(option("--ping-hosts") ?? 200);
const skip = new Set((option("--skip") ?? "").split(",").filter(Boolean));
type WaitMode = "watch" | "result";
/** One Axion run per entry, on the same hosts (a configure after the first finds them configured). */
const axionWaits = (option("--axion-runs") ?? option("--wait") ?? "watch").split(",") as WaitMode[];
if (axionWaits.some((w) => w !== "watch" && w !== "result")) throw new Error("--wait / --axion-runs: watch or result");
/** Phases whose Ansible side runs (`--ansible configure,ping`, the default; `--ansible none`). */
const ansiblePhases = new Set((option("--ansible") ?? "configure,ping").split(","));
const profileDir = option("--profile-worker");
const temporalOption = option("--temporal") ?? "dev";
const temporalChoice: TemporalChoice =
  temporalOption === "dev" || temporalOption === "cluster"
    ? { kind: temporalOption }
    : { kind: "external", address: temporalOption, namespace: option("--temporal-namespace") ?? "axion" };
if (temporalChoice.kind === "external" && !/^[\w.-]+:\d+$/.test(temporalChoice.address))
  throw new Error("--temporal: dev, cluster or HOST:PORT");
/** The clock of V8's CPU profiles (µs, monotonic): marks the measured phases. */
const profileClockUs = () => Number(process.hrtime.bigint() / 1000n);
const resultsDir = join(root, "bench", "results");
const prefixes = { configure: "bench-ro-axion", configureAnsible: "bench-ro-ansible", ping: "bench-ro-ping" };
setLogLevel("warn");

type Owner = ReturnType<AxionStack["api"]["clients"]>;
type Kind = "configure" | "test_connection";
interface FleetOutcome {
  wallMs: number;
  ok: number;
  failures: string[];
}

/**
 * One rollout over the list (no canary, one batch of 100 %, no failure budget: every server is
 * operated), watched through WatchRollout until it ends.
 */
async function operateFleet(stack: AxionStack, owner: Owner, kind: Kind, serverIds: string[], waitFor: WaitMode): Promise<FleetOutcome> {
  const started = Date.now();
  const { rollout } = await owner.rollouts.startRollout({
    kind: kind === "configure" ? RolloutKind.CONFIGURE : RolloutKind.TEST_CONNECTION,
    target: { serverIds },
    strategy: {
      canarySize: 0,
      batchSize: { value: { case: "percent", value: 100 } },
      maxFailures: { value: { case: "percent", value: 100 } },
    },
  });
  let last = rollout;
  if (waitFor === "watch") for await (const update of owner.rollouts.watchRollout({ id: rollout!.id })) last = update.rollout;
  else {
    await stack.client.workflow.getHandle(rollout!.workflowId).result();
    last = (await owner.rollouts.getRollout({ id: rollout!.id })).rollout;
  }
  const wallMs = Date.now() - started;
  const failures = (last?.servers ?? [])
    .filter((s) => s.state !== RolloutServerState.SUCCEEDED)
    .map((s) => `${s.serverName}: ${RolloutServerState[s.state]} ${s.reason}`);
  if (last?.status !== RolloutStatus.SUCCEEDED) failures.unshift(`rollout ${RolloutStatus[last?.status ?? 0]}: ${last?.reason ?? ""}`);
  return { wallMs, ok: last?.counts?.succeeded ?? 0, failures };
}

async function registerFleet(stack: AxionStack, fleet: Fleet, name: string): Promise<{ owner: Owner; serverIds: string[] }> {
  const owner = stack.api.clients((await stack.api.newOwner(name)).token);
  const clusterId = (await owner.clusters.createCluster({ name })).cluster!.id;
  const serverIds = await mapLimit(fleet.hosts, 10, async (host, i) => {
    const { server } = await owner.servers.createServer({
      clusterId,
      name: `${name}-${i + 1}`,
      host: host.ip,
      credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
    });
    return server!.id;
  });
  return { owner, serverIds };
}

let fleetsRegistered = 0;
async function axionRun(stack: AxionStack, fleet: Fleet, kind: Kind, waitFor: WaitMode) {
  const { owner, serverIds } = await registerFleet(stack, fleet, `bench-${kind.replace("_", "-")}-${++fleetsRegistered}`);
  const machineBefore = machineCpu();
  const load = loadavg();
  const before = stackCpu(stack);
  const writesBefore = await stack.temporalWrites();
  const threadsBefore = threadCpuS(stack.workerPid);
  const fromUs = profileClockUs();
  say(`axion: ${kind} on ${serverIds.length} servers at once, awaited by ${waitFor}`);
  const outcome = await operateFleet(stack, owner, kind, serverIds, waitFor);
  const cpu = cpuSince(before, stackCpu(stack));
  // A PostgreSQL backend reports its counts at most once a second, and within 10 s of going idle.
  if (writesBefore) await new Promise((r) => setTimeout(r, 11_000));
  const writesAfter = await stack.temporalWrites();
  const temporalWrites =
    writesBefore && writesAfter
      ? `Temporal's PostgreSQL per host: ${((writesAfter.rows - writesBefore.rows) / serverIds.length).toFixed(0)} rows written, ${((writesAfter.commits - writesBefore.commits) / serverIds.length).toFixed(0)} transactions (reads too)`
      : undefined;
  if (temporalWrites) say(temporalWrites);
  const threads = Object.entries(threadCpuS(stack.workerPid))
    .map(([name, s]) => [name, s - (threadsBefore[name] ?? 0)] as const)
    .filter(([, s]) => s >= 0.05)
    .map(([name, s]) => `${name} ${s.toFixed(2)}`)
    .join(", ");
  say(`worker threads (CPU-s): ${threads}`);
  if (profileDir) say(`profile window: --from ${fromUs} --to ${profileClockUs()}`);
  return {
    ...outcome,
    cpu,
    workerThreads: threads,
    perHost: perHost(cpu, serverIds.length),
    temporalWrites,
    machineBusyPct: busyPct(machineBefore, machineCpu()),
    loadavgBefore: load,
  };
}

/** Runs an ansible command with forks = the fleet's size; its CPU is that of every process it started (bash `times`). */
async function ansibleRun(fleet: Fleet, command: string[], log: string) {
  const dir = mkdtempSync(join(tmpdir(), "axion-bench-ansible-"));
  const cpDir = join(dir, "cp");
  mkdirSync(cpDir);
  try {
    writeAnsibleFiles(dir, cpDir, fleet, fleet.hosts.length);
    const timesFile = join(dir, "times");
    const machineBefore = machineCpu();
    const load = loadavg();
    say(`ansible: ${command[0]} on ${fleet.hosts.length} hosts, forks ${fleet.hosts.length}`);
    const started = Date.now();
    const child = spawn(
      "bash",
      ["-c", '"$@"; rc=$?; times > "$BENCH_TIMES"; exit $rc', "bash", ...command, "-i", join(dir, "inventory.ini")],
      {
        env: { ...process.env, ANSIBLE_CONFIG: join(dir, "ansible.cfg"), ANSIBLE_NOCOLOR: "1", BENCH_TIMES: timesFile },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    const code = await new Promise<number>((resolve) => child.once("close", (c) => resolve(c ?? 1)));
    const wallMs = Date.now() - started;
    const machineBusy = busyPct(machineBefore, machineCpu());
    writeFileSync(log, output);
    const childTimes = existsSync(timesFile) ? readFileSync(timesFile, "utf8").trim().split("\n")[1] : undefined;
    const controllerCpuS = childTimes
      ?.split(/\s+/)
      .map((t) => t.match(/^(\d+)m([\d.]+)s$/))
      .reduce((sum, m) => sum + (m ? Number(m[1]) * 60 + Number(m[2]) : 0), 0);
    // Recap lines (playbook) or "host | SUCCESS" lines (ad hoc).
    const recap = [...output.matchAll(/^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)];
    const ok = recap.length ? recap.filter((m) => m[4] === "0" && m[5] === "0").length : (output.match(/^\S+ \| SUCCESS/gm) ?? []).length;
    const failures = ok === fleet.hosts.length ? [] : [`${fleet.hosts.length - ok} hosts not ok, exit ${code} (see ${log})`];
    return { wallMs, ok, failures, controllerCpuS, machineBusyPct: machineBusy, loadavgBefore: load };
  } finally {
    for (const socket of existsSync(cpDir) ? readdirSync(cpDir) : []) {
      try {
        execFileSync("ssh", ["-o", `ControlPath=${join(cpDir, socket)}`, "-O", "exit", "bench"], { stdio: "ignore", timeout: 5000 });
      } catch {
        /* already gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

type AxionOutcome = Awaited<ReturnType<typeof axionRun>>;
/** The Axion phase once per --axion-runs entry, on the same hosts. */
async function repeatedRuns(fleet: Fleet, kind: Kind): Promise<(AxionOutcome & { waitFor: WaitMode })[]> {
  const out: (AxionOutcome & { waitFor: WaitMode })[] = [];
  for (const waitFor of axionWaits) out.push({ ...(await axionRun(stack as AxionStack, fleet, kind, waitFor)), waitFor });
  return out;
}
const againLines = (again: (AxionOutcome & { waitFor: WaitMode })[]) =>
  again.map(
    (r, i) => `  again #${i + 2} (same hosts, awaited by ${r.waitFor}): ${(r.wallMs / 1000).toFixed(1)} s, ${r.ok} ok, Axion ${r.perHost}`,
  );
/** A phase left out of --ansible: its Ansible side is not run. */
async function skippedAnsible(_fleet: Fleet, _command: string[], _log: string): ReturnType<typeof ansibleRun> {
  return { wallMs: Number.NaN, ok: 0, failures: [], controllerCpuS: undefined, machineBusyPct: 0, loadavgBefore: loadavg() };
}

const temporalServerName = {
  dev: "the CLI's dev server (SQLite)",
  cluster: "a real server (go.temporal.io/server, PostgreSQL)",
  external: `the server at ${temporalOption}`,
};
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
mkdirSync(resultsDir, { recursive: true });
const results: Record<string, unknown> = {};
const lines: string[] = [];
const s = (ms: number) => (ms / 1000).toFixed(1);
let stack: AxionStack | undefined;
const cleanUp = async () => {
  await stack?.close();
  stack = undefined;
  for (const p of Object.values(prefixes)) {
    try {
      downHosts(p);
    } catch (e) {
      say(`down ${p}: ${String(e)}`);
    }
  }
};
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void cleanUp().finally(() => process.exit(130)));

try {
  say(`starting PostgreSQL, ${temporalServerName[temporalChoice.kind]}, the API and the worker (child process)`);
  // The benchmark is one owner operating a fleet: the per-owner edge limits would pace it, not measure it.
  const unlimited = { burst: 100_000, perMinute: 100_000 };
  stack = await startAxion({
    limits: { connectionTests: unlimited, provisioningStarts: unlimited, serverWrites: unlimited, planChecks: unlimited },
    workerNodeArgs: profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [],
    temporal: temporalChoice,
  });

  if (!skip.has("configure")) {
    const image = dockerImagePath();
    const n = configureHosts;
    const { fleet, upMs } = await freshFleet(prefixes.configure, n, image, ["--timeout", "600"]);
    say(`${n} Docker-preinstalled hosts up in ${s(upMs)} s`);
    const [axion, ...again] = await repeatedRuns(fleet, "configure");
    if (!axion) throw new Error("--axion-runs: at least one");
    axion.failures.push(...(await verifyHosts(fleet)));
    downHosts(prefixes.configure);
    const other = ansiblePhases.has("configure") ? await freshFleet(prefixes.configureAnsible, n, image, ["--timeout", "600"]) : undefined;
    const ansible = await (other ? ansibleRun : skippedAnsible)(
      other?.fleet as Fleet,
      [
        "ansible-playbook",
        join(root, "bench", "ansible", "bootstrap.yml"),
        "-e",
        JSON.stringify({ orchestrator_public_key: ORCHESTRATOR_KEY }),
      ],
      join(resultsDir, `${stamp}-rollout-ansible-configure.log`),
    );
    if (other) ansible.failures.push(...(await verifyHosts(other.fleet)));
    downHosts(prefixes.configureAnsible);
    results.configure = { n, axion, again, ansible, ratio: ansible.wallMs / axion.wallMs };
    lines.push(
      `configure, ${n} Docker-preinstalled hosts, batch 100 %: Axion ${s(axion.wallMs)} s (${axion.ok}/${n} ok), ` +
        `Ansible serial 100 % ${s(ansible.wallMs)} s (${ansible.ok}/${n} ok): ${(ansible.wallMs / axion.wallMs).toFixed(2)}x (target >= 8x)`,
      `  Axion ${axion.perHost} (target <= 0.4); machine busy ${axion.machineBusyPct} %, load before ${axion.loadavgBefore[0]?.toFixed(1)}`,
      ...(axion.temporalWrites ? [`  ${axion.temporalWrites}`] : []),
      `  Ansible controller ${((ansible.controllerCpuS ?? Number.NaN) / n).toFixed(3)} CPU-s per host; machine busy ${ansible.machineBusyPct} %`,
    );
    lines.push(...againLines(again));
    say(lines.slice(-3 - again.length).join("\n"));
  }

  if (!skip.has("ping")) {
    const m = pingHosts;
    const { fleet, upMs } = await freshFleet(prefixes.ping, m, undefined, ["--timeout", "900", "--jobs", "16"]);
    say(`${m} fresh hosts up in ${s(upMs)} s`);
    const [axion, ...again] = await repeatedRuns(fleet, "test_connection");
    if (!axion) throw new Error("--axion-runs: at least one");
    const ansible = await (ansiblePhases.has("ping") ? ansibleRun : skippedAnsible)(
      fleet,
      ["ansible", "all", "-m", "ping"],
      join(resultsDir, `${stamp}-rollout-ansible-ping.log`),
    );
    downHosts(prefixes.ping);
    results.testConnection = { n: m, axion, again, ansible, ratio: ansible.wallMs / axion.wallMs };
    lines.push(
      `test connection, ${m} fresh hosts: Axion ${s(axion.wallMs)} s (${axion.ok}/${m} ok), ` +
        `ansible -m ping -f ${m} ${s(ansible.wallMs)} s (${ansible.ok}/${m} ok): ${(ansible.wallMs / axion.wallMs).toFixed(2)}x (target >= 5x)`,
      `  Axion ${axion.perHost}; machine busy ${axion.machineBusyPct} %, load before ${axion.loadavgBefore[0]?.toFixed(1)}`,
      ...(axion.temporalWrites ? [`  ${axion.temporalWrites}`] : []),
      `  Ansible controller ${((ansible.controllerCpuS ?? Number.NaN) / m).toFixed(3)} CPU-s per host; machine busy ${ansible.machineBusyPct} %`,
      ...againLines(again),
    );
    say(lines.slice(-3 - again.length).join("\n"));
  }
} finally {
  await cleanUp();
}

const failures = Object.entries(results).flatMap(([phase, r]) => {
  const { axion, ansible } = r as { axion: FleetOutcome; ansible: FleetOutcome };
  return [...axion.failures.map((f) => `${phase} axion: ${f}`), ...ansible.failures.map((f) => `${phase} ansible: ${f}`)];
});
lines.unshift(
  `Axion vs Ansible on a fleet (${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GB), one run, Temporal: ${temporalServerName[temporalChoice.kind]}`,
);
lines.push(failures.length ? `FAILURES (${failures.length}):\n  ${failures.slice(0, 40).join("\n  ")}` : "all operations succeeded");
const file = join(resultsDir, `${stamp}-rollout.json`);
writeFileSync(file, `${JSON.stringify({ startedAt: stamp, results, failures, table: lines.join("\n") }, null, 2)}\n`);
lines.push(`results: ${file}`);
console.log(lines.join("\n"));
