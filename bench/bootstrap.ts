/**
 * The bootstrap benchmark (`npm run bench`): Axion's ConfigureServer against the same steps as an
 * Ansible playbook (bench/ansible/bootstrap.yml), on N fresh test hosts at once, for each N.
 * Prints figures; it is not a test: missed targets and failed operations are reported, and the
 * exit status is non-zero only when it could not measure.
 *
 *   node --import tsx bench/bootstrap.ts [--sizes 1,10,50] [--modes fresh,docker-preinstalled]
 *        [--docker-preinstalled] [--tools axion,ansible] [--watch]
 *
 * Axion side: a real Temporal dev server, a throwaway PostgreSQL, the API in this process and the
 * worker in a child process (bench/worker.ts) whose VmHWM is read from /proc. All N
 * ConfigureServer calls go through the API at once; the end of each is awaited on its workflow
 * result (--watch: WatchOperation streams, which query every running workflow twice a second).
 * Each N gets fresh hosts (prefixes bench-axion, bench-ansible), torn down afterwards.
 * --docker-preinstalled boots the hosts from an image with docker.io installed (bench/docker-image.sh).
 * Results: a table on stdout, JSON in bench/results/<timestamp>.json, Ansible logs beside it.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { setLogLevel } from "../core/kernel/log.js";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { downHosts } from "../test/support/testhosts.js";
import {
  type AxionStack,
  busyPct,
  dockerImagePath,
  freshFleet,
  hostsCpuS,
  machineCpu,
  mapLimit,
  ORCHESTRATOR_KEY,
  processCpuS,
  root,
  round1,
  say,
  startAxion,
  treeCpuS,
  verifyHosts,
  writeAnsibleFiles,
} from "./stack.js";

const _execFileAsync = promisify(execFile);
process.chdir(root); // test/support/testhosts.ts finds scripts/ from the working directory
const _testhosts = join(root, "scripts", "testhosts");
const playbook = join(root, "bench", "ansible", "bootstrap.yml");
const resultsDir = join(root, "bench", "results");

// --- arguments ----------------------------------------------------------------------------------
type Mode = "fresh" | "docker-preinstalled";
type Tool = "axion" | "ansible";
const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
if (args.includes("-h") || args.includes("--help")) {
  console.log(
    readFileSync(fileURLToPath(import.meta.url), "utf8")
      .split("\n")
      .slice(1, 17)
      .join("\n"),
  );
  process.exit(0);
}
const sizes = (option("--sizes") ?? "1,10,50").split(",").map((s) => Number(s.trim()));
if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 250)) throw new Error("--sizes: whole numbers 1..250, comma-separated");
const modes = (args.includes("--docker-preinstalled") ? "docker-preinstalled" : (option("--modes") ?? "fresh")).split(",") as Mode[];
if (modes.some((m) => m !== "fresh" && m !== "docker-preinstalled")) throw new Error("--modes: fresh and/or docker-preinstalled");
const tools = (option("--tools") ?? "axion,ansible").split(",") as Tool[];
const useWatch = args.includes("--watch");
const prefixes: Record<Tool, string> = { axion: "bench-axion", ansible: "bench-ansible" };
/** The steps bench/ansible/bootstrap.yml reproduces. Later steps of the workflow (the agent, skipped when no agent is configured) are reported, not required. */
const STEPS = ["connect", "preflight", "admin_user", "docker", "firewall", "ssh_hardening", "deploy_key"];

setLogLevel("warn");
const seconds = (ms: number) => Math.round(ms / 10) / 100;
const mb = (kb: number) => Math.round(kb / 102.4) / 10;

// --- memory -------------------------------------------------------------------------------------
function procStatusKb(pid: number, field: "VmHWM" | "VmRSS"): number {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`${field}:\\s+(\\d+) kB`));
  return m ? Number(m[1]) : 0;
}

/** Samples a value every `ms` and keeps the peak. */
function peakSampler(ms: number, sample: () => number) {
  let peak = 0;
  const tick = () => {
    try {
      peak = Math.max(peak, sample());
    } catch {
      /* the process is gone */
    }
  };
  tick();
  const timer = setInterval(tick, ms);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return peak;
    },
  };
}

const pageKb = Number(execFileSync("getconf", ["PAGESIZE"], { encoding: "utf8" })) / 1024;
/** RSS (kB) of a process tree, plus processes whose command line names `marker` (ssh ControlPersist masters detach). */
function treeRssKb(rootPid: number, marker: string): number {
  const parent = new Map<number, number>();
  const rss = new Map<number, number>();
  const marked = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(pid, Number(fields[1]));
      rss.set(pid, Number(fields[21]) * pageKb);
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker)) marked.add(pid);
    } catch {
      /* exited meanwhile */
    }
  }
  let total = 0;
  for (const [pid, kb] of rss) {
    let p: number | undefined = pid;
    let inTree = marked.has(pid);
    while (!inTree && p !== undefined && p > 1) {
      if (p === rootPid) inTree = true;
      p = parent.get(p);
    }
    if (inTree) total += kb;
  }
  return total;
}

// --- hosts --------------------------------------------------------------------------------------

// --- the Axion side -----------------------------------------------------------------------------
interface AxionRun {
  n: number;
  wallMs: number;
  succeeded: number;
  failures: string[];
  activities: {
    scheduled: number;
    attempts: number;
    failedAttempts: number;
    byType: Record<string, number>;
    sshSteps: number;
    source: string;
    perWorkflow: number;
  };
  /** Steps beyond STEPS, with their outcome: "agent: skipped" → count. */
  otherSteps: Record<string, number>;
  activitiesPerSecond: number;
  workerPeakRssMb: number;
  workerSampledPeakRssMb: number;
  workerRssBeforeMb: number;
  workerCpuS: number;
  /** Worker + Temporal dev server + PostgreSQL + this process (API, client, samplers) during the run. */
  axionStackCpuS: number;
  /** Of which: the Temporal dev server, and PostgreSQL. */
  temporalCpuS: number;
  postgresCpuS: number;
  /** This process: the API, its client and the samplers. */
  apiCpuS: number;
  /** Per step: mean and max duration over the N operations, seconds. */
  stepSeconds: Record<string, { mean: number; max: number }>;
  hostsCpuS?: number;
  machineBusyPct: number;
  hostsUpS: number;
  verified: number;
  loadavgBefore: number[];
  loadavgAfter: number[];
}

async function runAxion(stack: AxionStack, n: number, mode: Mode): Promise<AxionRun> {
  const { fleet, upMs } = await freshFleet(prefixes.axion, n, mode === "docker-preinstalled" ? dockerImagePath() : undefined);
  try {
    const owner = stack.api.clients((await stack.api.newOwner(`bench-${mode}-${n}`)).token);
    const clusterId = (await owner.clusters.createCluster({ name: `bench-${n}` })).cluster!.id;
    const servers = await mapLimit(fleet.hosts, 10, async (host, i) => {
      const { server } = await owner.servers.createServer({
        clusterId,
        name: `bench-${i + 1}`,
        host: host.ip,
        credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
      });
      return server!;
    });

    // Idle worker: forget the start-up peak (workflow bundling), measure from here.
    writeFileSync(`/proc/${stack.workerPid}/clear_refs`, "5");
    const rssBefore = procStatusKb(stack.workerPid, "VmRSS");
    const sampler = peakSampler(100, () => procStatusKb(stack.workerPid, "VmRSS"));
    const loadBefore = loadavg();
    const cpuBefore = {
      worker: processCpuS(stack.workerPid),
      services: treeCpuS(stack.servicePids),
      temporal: treeCpuS(stack.servicePids.slice(0, 1)),
      self: process.cpuUsage(),
      hosts: hostsCpuS(fleet),
      machine: machineCpu(),
    };
    say(`axion N=${n} (${mode}): ConfigureServer on ${n} servers`);
    const started = Date.now();
    const operations = await Promise.all(servers.map(async (s) => (await owner.servers.configureServer({ id: s.id })).operation!));
    const finals = await Promise.all(
      operations.map(async (op) => {
        if (useWatch) {
          let last = op;
          for await (const update of owner.operations.watchOperation({ id: op.id })) last = update.operation ?? last;
          return last;
        }
        await stack.client.workflow
          .getHandle(op.workflowId)
          .result()
          .catch(() => undefined); // the operation row says how it ended
        return (await owner.operations.getOperation({ id: op.id })).operation!;
      }),
    );
    const wallMs = Date.now() - started;
    const loadAfter = loadavg();
    const hostsCpuAfter = hostsCpuS(fleet);
    const cpuAfter = {
      worker: processCpuS(stack.workerPid),
      services: treeCpuS(stack.servicePids),
      temporal: treeCpuS(stack.servicePids.slice(0, 1)),
      self: process.cpuUsage(cpuBefore.self),
      machine: machineCpu(),
    };
    const sampledPeak = sampler.stop();
    const hwm = procStatusKb(stack.workerPid, "VmHWM");

    const failures = finals
      .map((op, i) => ({ op, host: fleet.hosts[i]!.name }))
      .filter(({ op }) => op.status !== OperationStatus.SUCCEEDED)
      .map(({ op, host }) => `${host}: ${OperationStatus[op.status]} ${op.error}`);
    const otherSteps: Record<string, number> = {};
    const durations: Record<string, number[]> = {};
    for (const op of finals) {
      for (const step of op.steps) {
        const list = durations[step.name] ?? [];
        list.push(Number(step.durationMs ?? 0) / 1000);
        durations[step.name] = list;
      }
    }
    const stepSeconds = Object.fromEntries(
      Object.entries(durations).map(([name, d]) => [
        name,
        { mean: Math.round((d.reduce((a, b) => a + b, 0) / d.length) * 100) / 100, max: Math.round(Math.max(...d) * 100) / 100 },
      ]),
    );
    for (const op of finals) {
      const names = op.steps.map((s) => s.name);
      const missing = STEPS.filter((s) => !names.includes(s));
      if (op.status === OperationStatus.SUCCEEDED && missing.length) failures.push(`${op.id}: steps ${missing.join(",")} missing`);
      for (const step of op.steps.filter((s) => !STEPS.includes(s.name))) {
        const key = `${step.name}: ${step.status}`;
        otherSteps[key] = (otherSteps[key] ?? 0) + 1;
      }
    }

    // Activities from the workflow histories: scheduled activities, and attempts (the Started
    // event of an activity carries its final attempt number).
    let scheduled = 0;
    let attempts = 0;
    const byType: Record<string, number> = {};
    for (const op of operations) {
      const history = await stack.client.workflow.getHandle(op.workflowId).fetchHistory();
      for (const event of history.events ?? []) {
        const type = event.activityTaskScheduledEventAttributes?.activityType?.name;
        if (type) {
          scheduled += 1;
          byType[type] = (byType[type] ?? 0) + 1;
        }
        if (event.activityTaskStartedEventAttributes) attempts += event.activityTaskStartedEventAttributes.attempt ?? 1;
      }
    }
    const problems = await verifyHosts(fleet);
    failures.push(...problems);
    return {
      n,
      wallMs,
      succeeded: finals.filter((op) => op.status === OperationStatus.SUCCEEDED).length,
      failures,
      activities: {
        scheduled,
        attempts,
        failedAttempts: attempts - scheduled,
        byType,
        sshSteps: STEPS.length * n,
        perWorkflow: scheduled / n,
        source: "workflow histories (ActivityTaskScheduled events; attempts from ActivityTaskStarted)",
      },
      otherSteps,
      activitiesPerSecond: Math.round((scheduled / (wallMs / 1000)) * 100) / 100,
      workerPeakRssMb: mb(hwm),
      workerSampledPeakRssMb: mb(sampledPeak),
      workerRssBeforeMb: mb(rssBefore),
      workerCpuS: round1(cpuAfter.worker - cpuBefore.worker) ?? 0,
      axionStackCpuS:
        round1(
          cpuAfter.worker - cpuBefore.worker + cpuAfter.services - cpuBefore.services + (cpuAfter.self.user + cpuAfter.self.system) / 1e6,
        ) ?? 0,
      temporalCpuS: round1(cpuAfter.temporal - cpuBefore.temporal) ?? 0,
      postgresCpuS: round1(cpuAfter.services - cpuBefore.services - (cpuAfter.temporal - cpuBefore.temporal)) ?? 0,
      apiCpuS: round1((cpuAfter.self.user + cpuAfter.self.system) / 1e6) ?? 0,
      stepSeconds,
      hostsCpuS: round1(hostsCpuAfter !== undefined && cpuBefore.hosts !== undefined ? hostsCpuAfter - cpuBefore.hosts : undefined),
      machineBusyPct: busyPct(cpuBefore.machine, cpuAfter.machine),
      hostsUpS: seconds(upMs),
      verified: n - problems.length,
      loadavgBefore: loadBefore,
      loadavgAfter: loadAfter,
    };
  } finally {
    downHosts(prefixes.axion);
  }
}

// --- the Ansible side ---------------------------------------------------------------------------
interface AnsibleRun {
  n: number;
  wallMs: number;
  succeeded: number;
  failures: string[];
  tasksPerHost: number;
  controllerPeakRssMb: number;
  controllerCpuS?: number;
  hostsCpuS?: number;
  machineBusyPct: number;
  hostsUpS: number;
  verified: number;
  log: string;
  loadavgBefore: number[];
  loadavgAfter: number[];
}

async function runAnsible(n: number, mode: Mode, stamp: string): Promise<AnsibleRun> {
  const { fleet, upMs } = await freshFleet(prefixes.ansible, n, mode === "docker-preinstalled" ? dockerImagePath() : undefined);
  const dir = mkdtempSync(join(tmpdir(), "axion-bench-ansible-"));
  const cpDir = join(dir, "cp");
  mkdirSync(cpDir);
  try {
    writeAnsibleFiles(dir, cpDir, fleet, n);
    const log = join(resultsDir, `${stamp}-ansible-${mode}-${n}.log`);
    const loadBefore = loadavg();
    const cpuBefore = { hosts: hostsCpuS(fleet), machine: machineCpu() };
    const timesFile = join(dir, "times");
    say(`ansible N=${n} (${mode}): ansible-playbook, forks=${n}`);
    const started = Date.now();
    // bash's `times` afterwards: CPU of ansible-playbook and every fork and ssh it reaped.
    const child = spawn(
      "bash",
      [
        "-c",
        'ansible-playbook "$@"; rc=$?; times > "$BENCH_TIMES"; exit $rc',
        "bash",
        "-i",
        join(dir, "inventory.ini"),
        playbook,
        "-e",
        JSON.stringify({ orchestrator_public_key: ORCHESTRATOR_KEY }),
      ],
      {
        env: {
          ...process.env,
          ANSIBLE_CONFIG: join(dir, "ansible.cfg"),
          ANSIBLE_NOCOLOR: "1",
          ANSIBLE_FORCE_COLOR: "0",
          BENCH_TIMES: timesFile,
        },
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
    const sampler = peakSampler(250, () => treeRssKb(child.pid!, cpDir));
    const code = await new Promise<number>((resolve) => child.once("close", (c) => resolve(c ?? 1)));
    const wallMs = Date.now() - started;
    const loadAfter = loadavg();
    const hostsCpuAfter = hostsCpuS(fleet);
    const machineAfter = machineCpu();
    const peak = sampler.stop();
    // `times`: "0m0.01s 0m0.00s" (the shell) then "1m2.50s 0m9.10s" (its children)
    const childTimes = existsSync(timesFile) ? readFileSync(timesFile, "utf8").trim().split("\n")[1] : undefined;
    const controllerCpuS = childTimes
      ?.split(/\s+/)
      .map((t) => t.match(/^(\d+)m([\d.]+)s$/))
      .reduce((sum, m) => sum + (m ? Number(m[1]) * 60 + Number(m[2]) : 0), 0);
    writeFileSync(log, output);

    const recap = [...output.matchAll(/^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)];
    const failures = recap
      .filter((m) => m[4] !== "0" || m[5] !== "0")
      .map((m) => `${m[1]}: unreachable=${m[4]} failed=${m[5]} (see ${log})`);
    if (recap.length !== n) failures.push(`ansible-playbook exited ${code}; ${recap.length}/${n} hosts in PLAY RECAP (see ${log})`);
    else if (code !== 0 && failures.length === 0) failures.push(`ansible-playbook exited ${code} (see ${log})`);
    const problems = await verifyHosts(fleet);
    failures.push(...problems);
    return {
      n,
      wallMs,
      succeeded: recap.filter((m) => m[4] === "0" && m[5] === "0").length,
      failures,
      tasksPerHost: (output.match(/^(TASK|RUNNING HANDLER) \[/gm) ?? []).length,
      controllerPeakRssMb: mb(peak),
      controllerCpuS: round1(controllerCpuS),
      hostsCpuS: round1(hostsCpuAfter !== undefined && cpuBefore.hosts !== undefined ? hostsCpuAfter - cpuBefore.hosts : undefined),
      machineBusyPct: busyPct(cpuBefore.machine, machineAfter),
      hostsUpS: seconds(upMs),
      verified: n - problems.length,
      log,
      loadavgBefore: loadBefore,
      loadavgAfter: loadAfter,
    };
  } finally {
    for (const socket of existsSync(cpDir) ? readdirSync(cpDir) : []) {
      try {
        execFileSync("ssh", ["-o", `ControlPath=${join(cpDir, socket)}`, "-O", "exit", "bench"], { stdio: "ignore", timeout: 5000 });
      } catch {
        /* already gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
    downHosts(prefixes.ansible);
  }
}

// --- the run ------------------------------------------------------------------------------------
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
mkdirSync(resultsDir, { recursive: true });
const results: Record<string, { axion: Record<number, AxionRun>; ansible: Record<number, AnsibleRun> }> = {};
let stack: AxionStack | undefined;
let interrupted = false;
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
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    say(`${signal}: tearing down`);
    cleanUp().finally(() => process.exit(130));
  });
}

const benchStarted = Date.now();
try {
  if (tools.includes("axion")) {
    say("starting PostgreSQL, the Temporal dev server, the API and the worker (child process)");
    stack = await startAxion();
  }
  for (const mode of modes) {
    results[mode] = { axion: {}, ansible: {} };
    for (const n of sizes) {
      if (stack) {
        const run = await runAxion(stack, n, mode);
        results[mode]!.axion[n] = run;
        say(
          `axion N=${n}: ${seconds(run.wallMs)} s, ${run.succeeded}/${n} succeeded, ${run.activities.scheduled} activities, worker peak ${run.workerPeakRssMb} MB`,
        );
        for (const f of run.failures) say(`  FAILURE ${f}`);
      }
      if (tools.includes("ansible")) {
        const run = await runAnsible(n, mode, stamp);
        results[mode]!.ansible[n] = run;
        say(`ansible N=${n}: ${seconds(run.wallMs)} s, ${run.succeeded}/${n} ok`);
        for (const f of run.failures) say(`  FAILURE ${f}`);
      }
    }
  }
} finally {
  if (!interrupted) await cleanUp();
}

// --- the report ---------------------------------------------------------------------------------
const fmt = (v: number | undefined, digits = 1) => (v === undefined || Number.isNaN(v) ? "-" : v.toFixed(digits));
const pad = (s: string, w: number) => s.padStart(w);
const lines: string[] = [];
const targets: Record<string, unknown> = {};
lines.push("");
lines.push(
  `Axion vs Ansible, bootstrap of N fresh hosts at once (${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GB; ansible forks=N, pipelining)`,
);
for (const mode of modes) {
  const r = results[mode]!;
  lines.push("");
  lines.push(
    mode === "fresh"
      ? "mode fresh: the bootstrap installs docker.io (dpkg, offline)"
      : "mode docker-preinstalled: hosts boot with docker.io installed and running (bench/docker-image.sh): orchestration overhead",
  );
  const header = [
    "N",
    "Axion wall s",
    "Ansible wall s",
    "Ansible/Axion",
    "activities",
    "activities/s",
    "worker peak RSS MB",
    "ansible ctl RSS MB",
    "ok (axion/ansible)",
  ];
  const widths = header.map((h) => Math.max(h.length, 6));
  lines.push(header.map((h, i) => pad(h, widths[i]!)).join(" | "));
  for (const n of sizes) {
    const ax = r.axion[n];
    const an = r.ansible[n];
    const row = [
      String(n),
      fmt(ax && ax.wallMs / 1000),
      fmt(an && an.wallMs / 1000),
      ax && an ? fmt(an.wallMs / ax.wallMs, 2) : "-",
      ax ? String(ax.activities.scheduled) : "-",
      fmt(ax?.activitiesPerSecond, 2),
      fmt(ax?.workerPeakRssMb),
      fmt(an?.controllerPeakRssMb),
      `${ax ? `${ax.succeeded}/${n}${ax.failures.length ? "!" : ""}` : "-"} ${an ? `${an.succeeded}/${n}${an.failures.length ? "!" : ""}` : "-"}`,
    ];
    lines.push(row.map((c, i) => pad(c, widths[i]!)).join(" | "));
  }
  const small = Math.min(...sizes);
  const big = Math.max(...sizes);
  const scale = (runs: Record<number, { wallMs: number }>) =>
    runs[big] && runs[small] && big !== small ? runs[big]!.wallMs / runs[small]!.wallMs : undefined;
  lines.push(`scaling wall(N=${big})/wall(N=${small}): Axion ${fmt(scale(r.axion), 2)}, Ansible ${fmt(scale(r.ansible), 2)}`);
  const ax50 = r.axion[50];
  const an50 = r.ansible[50];
  const ax1 = r.axion[1];
  const speedup = ax50 && an50 ? an50.wallMs / ax50.wallMs : undefined;
  const scaling = ax50 && ax1 ? ax50.wallMs / ax1.wallMs : undefined;
  const verdict = (ok: boolean | undefined) => (ok === undefined ? "n/a (not measured)" : ok ? "PASS" : "FAIL");
  lines.push(
    `target: at N=50 Axion >= 3x faster than Ansible: ${verdict(speedup === undefined ? undefined : speedup >= 3)} (${fmt(speedup, 2)}x)`,
  );
  lines.push(
    `target: Axion wall(N=50) <= 3x wall(N=1): ${verdict(scaling === undefined ? undefined : scaling <= 3)} (${fmt(scaling, 2)}x)`,
  );
  targets[mode] = { speedupAt50: speedup, axionScaling50over1: scaling };
  for (const n of sizes) {
    const ax = r.axion[n];
    const an = r.ansible[n];
    const parts: string[] = [];
    if (ax) {
      parts.push(
        `axion: hosts up ${fmt(ax.hostsUpS)} s, CPU in hosts ${fmt(ax.hostsCpuS)} s, worker CPU ${fmt(ax.workerCpuS)} s ` +
          `(whole stack ${fmt(ax.axionStackCpuS)} s, of which Temporal ${fmt(ax.temporalCpuS)} s, PostgreSQL ${fmt(ax.postgresCpuS)} s, API ${fmt(ax.apiCpuS)} s), ` +
          `per host: ${fmt(ax.axionStackCpuS / n, 3)} CPU-s (worker ${fmt(ax.workerCpuS / n, 3)}, Temporal ${fmt(ax.temporalCpuS / n, 3)}, ` +
          `PostgreSQL ${fmt(ax.postgresCpuS / n, 3)}, API ${fmt(ax.apiCpuS / n, 3)}), ` +
          `worker RSS idle ${fmt(ax.workerRssBeforeMb)} MB, machine busy ${fmt(ax.machineBusyPct)} %, ` +
          `${ax.activities.attempts} attempts (${ax.activities.failedAttempts} retries)\n        step mean/max s: ${Object.entries(
            ax.stepSeconds,
          )
            .map(([k, v]) => `${k} ${fmt(v.mean, 2)}/${fmt(v.max, 1)}`)
            .join(", ")}` +
          (Object.keys(ax.otherSteps).length
            ? `, other steps ${Object.entries(ax.otherSteps)
                .map(([k, v]) => `${k} ×${v}`)
                .join(", ")}`
            : ""),
      );
    }
    if (an) {
      parts.push(
        `ansible: hosts up ${fmt(an.hostsUpS)} s, CPU in hosts ${fmt(an.hostsCpuS)} s, controller CPU ${fmt(an.controllerCpuS)} s, ` +
          `machine busy ${fmt(an.machineBusyPct)} %, ${an.tasksPerHost} tasks per host`,
      );
    }
    lines.push(`  N=${n} ${parts.join("\n      ")}`);
  }
}
const allFailures = Object.entries(results).flatMap(([mode, r]) =>
  [...Object.values(r.axion), ...Object.values(r.ansible)].flatMap((run) =>
    run.failures.map((f) => `${mode} N=${run.n} ${"activities" in run ? "axion" : "ansible"}: ${f}`),
  ),
);
lines.push("");
const anyAxion = Object.values(results)
  .flatMap((r) => Object.values(r.axion))
  .at(0);
const perWorkflow = anyAxion
  ? Object.entries(anyAxion.activities.byType)
      .map(([type, count]) => `${type}${count / anyAxion.n === 1 ? "" : ` ×${count / anyAxion.n}`}`)
      .join(", ")
  : "";
lines.push(
  `activities = ActivityTaskScheduled events in the workflow histories (per server: ${perWorkflow}); ` +
    "worker peak RSS = VmHWM of the worker process (reset when idle before each N); " +
    "ansible ctl RSS = sampled peak of ansible-playbook, its forks and ssh processes.",
);
lines.push(
  allFailures.length
    ? `FAILURES (${allFailures.length}):\n  ${allFailures.join("\n  ")}`
    : "all operations succeeded and every host was verified",
);
const file = join(resultsDir, `${stamp}.json`);
writeFileSync(
  file,
  `${JSON.stringify(
    {
      startedAt: new Date(benchStarted).toISOString(),
      durationS: seconds(Date.now() - benchStarted),
      machine: { cpus: cpus().length, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version },
      ansible: execFileSync("ansible-playbook", ["--version"], { encoding: "utf8" }).split("\n")[0],
      options: { sizes, modes, tools, wait: useWatch ? "WatchOperation streams" : "workflow result (long poll) + GetOperation" },
      results,
      targets,
      failures: allFailures,
      table: lines.join("\n"),
    },
    null,
    2,
  )}\n`,
);
lines.push(`results: ${file}`);
console.log(lines.join("\n"));
