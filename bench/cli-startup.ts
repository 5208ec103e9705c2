/**
 * Start-up cost of the `axion` command (not a test): a real API (PGlite, in this process) holding a few
 * clusters and servers, then N runs each of `axion --help`, `axion clusters list -o json` and
 * `axion servers list -o json` through the package's bin, one after another, and of `node -e ''` for
 * the floor under the same conditions. Prints the median CPU
 * (user + sys of the whole `axion` process, from the kernel's accounting of a reaped child via bash's
 * `times`) and wall time of each; the first run of each command is reported apart (it may build).
 *
 *   node --import tsx bench/cli-startup.ts [--runs 15] [--bin cli/bin/axion.mjs]
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startTestApi } from "../test/support/api.js";
import { root, say } from "./stack.js";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "15" }, bin: { type: "string", default: join(root, "cli", "bin", "axion.mjs") } },
});
const runs = Math.max(1, Number(values.runs));
const bin = resolve(values.bin);

const api = await startTestApi();
const { token } = await api.newOwner("cli-bench");
const clients = api.clients(token);
for (const [c, name] of ["prod", "staging", "dev"].entries()) {
  const { cluster } = await clients.clusters.createCluster({ name, labels: { env: name } });
  for (let i = 1; i <= 4; i++) {
    await clients.servers.createServer({
      clusterId: cluster?.id ?? "",
      name: `${name}-web-${i}`,
      host: `203.0.113.${c * 10 + i}`,
      sshUser: "root",
      credential: { method: { case: "password", value: "bench-password" } },
      labels: { role: "web" },
    });
  }
}
const home = mkdtempSync(join(tmpdir(), "axion-cli-bench-"));

interface Sample {
  cpuS: number;
  wallMs: number;
}

/**
 * One `axion …` run (with `bare`, node on an empty script instead: the floor on this machine at this
 * moment); CPU is bash's `times` line for its reaped children (the node process).
 */
function run(args: string[], bare = false): Promise<Sample> {
  const started = performance.now();
  return new Promise((done, fail) => {
    execFile(
      "bash",
      [
        "-c",
        '"$@" >/dev/null 2>"$AXION_BENCH_ERR" || { cat "$AXION_BENCH_ERR" >&2; exit 1; }; times',
        "axion",
        process.execPath,
        ...(bare ? ["-e", ""] : [bin, ...args]),
      ],
      {
        cwd: tmpdir(),
        env: {
          ...process.env,
          AXION_API: api.baseUrl,
          AXION_TOKEN: token,
          XDG_CONFIG_HOME: home,
          AXION_BENCH_ERR: join(home, "stderr"),
          NO_COLOR: "1",
        },
      },
      (error, stdout, stderr) => {
        const wallMs = performance.now() - started;
        if (error) return fail(new Error(`axion ${args.join(" ")} failed: ${stderr}`));
        const children = stdout.trim().split("\n").at(-1) ?? "";
        const [user, sys] = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
        done({ cpuS: (user ?? 0) + (sys ?? 0), wallMs });
      },
    );
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

const commands = [[], ["--help"], ["clusters", "list", "-o", "json"], ["servers", "list", "-o", "json"]];
const rows: string[] = [];
try {
  for (const args of commands) {
    const bare = args.length === 0;
    const first = await run(args, bare);
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) samples.push(await run(args, bare));
    const cpu = samples.map((s) => s.cpuS);
    rows.push(
      `| ${bare ? "node -e '' (the floor)" : `axion ${args.join(" ")}`} | ${median(cpu).toFixed(3)} | ${Math.min(...cpu).toFixed(3)} | ${median(samples.map((s) => s.wallMs)).toFixed(0)} | ${first.cpuS.toFixed(3)} / ${first.wallMs.toFixed(0)} |`,
    );
    say(rows.at(-1) as string);
  }
} finally {
  await api.close();
  rmSync(home, { recursive: true, force: true });
}
process.stdout.write(
  `axion start-up, ${runs} runs each (bin ${bin}, load average ${loadavg()[0]?.toFixed(1)}):\n` +
    "| command | median CPU-s | min CPU-s | median wall ms | first run CPU-s / wall ms |\n|---|---|---|---|---|\n" +
    `${rows.join("\n")}\n`,
);
