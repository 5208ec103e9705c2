/**
 * Heartbeat ingestion benchmark (not a test). A real PostgreSQL, the real API
 * server in its own process, and a fleet of simulated agents on loopback
 * (`bench/heartbeat-load`, Go: real Connect Heartbeat calls, each agent with its
 * own token, open-loop at a fixed total rate, latency measured from each
 * heartbeat's scheduled time). Each rate runs against the batching ingestor and
 * then against one UPDATE + INSERT per heartbeat behind the same API. `before`
 * runs the ingestor and table layout of before the metric tiers (a jsonb
 * `metrics_samples` table with its foreign key and two indexes, and the index
 * on agents.last_heartbeat_at), created for that mode and dropped after it.
 *
 *   node --import tsx bench/heartbeats.ts [--agents 10000] [--rates 1000,2000,4000] [--seconds 20]
 *        [--modes before,batched,per-heartbeat]
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { openDatabase } from "../db/client.js";
import { newId } from "../db/ids.js";
import { startPostgres } from "../test/support/postgres.js";

const { values } = parseArgs({
  options: {
    agents: { type: "string", default: "10000" },
    rates: { type: "string", default: "1000,2000,4000" },
    seconds: { type: "string", default: "20" },
    modes: { type: "string", default: "batched,per-heartbeat" },
  },
});
const agentCount = Number(values.agents);
const rates = values.rates.split(",").map(Number);
const seconds = Number(values.seconds);
type Mode = "batched" | "per-heartbeat" | "before";
const modes = values.modes.split(",") as Mode[];
const results = join(import.meta.dirname, "results");
mkdirSync(results, { recursive: true });

const loader = join(results, "heartbeat-load");
execFileSync("go", ["build", "-o", loader, "."], { cwd: join(import.meta.dirname, "heartbeat-load"), stdio: "inherit" });

const pg = await startPostgres();
const database = await openDatabase({ databaseUrl: pg.url, dataDir: "memory://" });
await database.migrate();

// The fleet: servers with agents and tokens (stored as SHA-256, as issued by the service).
const ownerId = newId();
const clusterId = newId();
await database.db.execute(sql`insert into owners (id, name) values (${ownerId}, 'bench')`);
await database.db.execute(sql`insert into clusters (id, owner_id, name) values (${clusterId}, ${ownerId}, 'bench')`);
const fleet = Array.from({ length: agentCount }, (_, i) => ({ id: newId(), token: `axa_${randomBytes(32).toString("base64url")}`, i }));
for (let at = 0; at < fleet.length; at += 5000) {
  const rows = JSON.stringify(
    fleet.slice(at, at + 5000).map((f) => ({ id: f.id, i: f.i, hash: createHash("sha256").update(f.token).digest("hex") })),
  );
  await database.db.execute(sql`insert into servers (id, owner_id, cluster_id, name, host, auth_method, status)
    select v.id, ${ownerId}::uuid, ${clusterId}::uuid, 's' || v.i, '10.' || (v.i / 65536) || '.' || (v.i / 256 % 256) || '.' || (v.i % 256), 'password', 'ONLINE'
    from jsonb_to_recordset(${rows}::jsonb) as v(id uuid, i int, hash text)`);
  await database.db.execute(sql`insert into agents (server_id, token_hash, token_issued_at)
    select v.id, v.hash, now() from jsonb_to_recordset(${rows}::jsonb) as v(id uuid, i int, hash text)`);
}
const agentsFile = join(results, "heartbeat-agents.csv");
writeFileSync(agentsFile, fleet.map((f) => `${f.id},${f.token}`).join("\n"), { mode: 0o600 });

async function startApi(mode: Mode): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_API_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
      "--import",
      "tsx",
      join(import.meta.dirname, "heartbeat-api.ts"),
      pg.url,
      mode,
    ],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream })) {
    const match = /^listening (\d+)$/.exec(line);
    if (match) return { port: Number(match[1]), child };
  }
  throw new Error(`API (${mode}) exited before listening`);
}

/** CPU seconds a process (and its reaped children) has used, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0) / 100;
  } catch {
    return 0;
  }
}
const postmaster = Number(execFileSync("pgrep", ["-f", `postgres -D .* -p ${new URL(pg.url).port}`], { encoding: "utf8" }).trim());
const postgresCpu = () =>
  cpuSeconds(postmaster) +
  execFileSync("pgrep", ["-P", String(postmaster)], { encoding: "utf8" })
    .split("\n")
    .filter(Boolean)
    .reduce((sum, pid) => sum + cpuSeconds(Number(pid)), 0);

interface LoadSummary {
  cpuSeconds: number;
  apiCpu: number;
  postgresCpu: number;
  achievedRate: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  missed: number;
  firstError?: string;
}

function runLoad(api: { port: number; child: ChildProcess }, rate: number): LoadSummary {
  const apiBefore = cpuSeconds(api.child.pid as number);
  const postgresBefore = postgresCpu();
  const out = execFileSync(
    loader,
    [
      ...["-url", `http://127.0.0.1:${api.port}`, "-agents", agentsFile, "-rate", String(rate), "-duration", `${seconds}s`],
      // Every agent has sent (registered its connection, had its token looked up) before measuring starts.
      ...["-warmup", `${Math.max(3, Math.ceil(agentCount / rate) + 2)}s`],
    ],
    { encoding: "utf8", maxBuffer: 1 << 20 },
  );
  const summary = JSON.parse(out.trim().split("\n").at(-1) as string) as LoadSummary;
  return { ...summary, apiCpu: cpuSeconds(api.child.pid as number) - apiBefore, postgresCpu: postgresCpu() - postgresBefore };
}

const line = (label: string, rate: number, s: LoadSummary) =>
  console.log(
    `${label.padEnd(26)} target ${String(rate).padStart(6)}/s  achieved ${s.achievedRate.toFixed(0).padStart(6)}/s  p50 ${s.p50Ms.toFixed(1).padStart(7)} ms  p99 ${s.p99Ms.toFixed(1).padStart(7)} ms  errors ${s.errors}  missed ${s.missed}  CPU s: API ${s.apiCpu.toFixed(1)} PostgreSQL ${s.postgresCpu.toFixed(1)} agents ${s.cpuSeconds.toFixed(1)}  PostgreSQL per heartbeat ${((s.postgresCpu / (s.achievedRate * seconds)) * 1e6).toFixed(1)} µs, API ${((s.apiCpu / (s.achievedRate * seconds)) * 1e6).toFixed(1)} µs${s.firstError ? `  (${s.firstError})` : ""}`,
  );

console.log(
  `${agentCount} simulated agents, ${seconds} s per rate after a warm-up in which every agent sends, PostgreSQL and the API on loopback`,
);
const byMode: Record<string, LoadSummary[]> = {};
/** The tables and indexes the heartbeat path wrote before the metric tiers (db/migrations/0002_agents.sql). */
async function previousLayout(action: "create" | "drop"): Promise<void> {
  const statements =
    action === "create"
      ? [
          `create table metrics_samples (server_id uuid not null references servers(id) on delete cascade,
             sampled_at timestamptz not null, received_at timestamptz not null, metrics jsonb not null)`,
          "create index metrics_samples_server_id_sampled_at_idx on metrics_samples (server_id, sampled_at)",
          "create index metrics_samples_received_at_idx on metrics_samples (received_at)",
          "create index agents_last_heartbeat_at_idx on agents (last_heartbeat_at)",
        ]
      : ["drop table metrics_samples", "drop index agents_last_heartbeat_at_idx", "vacuum analyze agents"];
  for (const statement of statements) await database.db.execute(sql.raw(statement));
}

for (const mode of modes) {
  if (mode === "before") await previousLayout("create");
  const api = await startApi(mode);
  byMode[mode] ??= [];
  for (const rate of rates) {
    const summary = runLoad(api, rate);
    byMode[mode].push(summary);
    line(
      { batched: "batched ingestion", before: "before the metric tiers", "per-heartbeat": "one UPDATE per heartbeat" }[mode],
      rate,
      summary,
    );
  }
  api.child.kill("SIGTERM");
  await new Promise((resolve) => api.child.once("exit", resolve));
  if (mode === "before") await previousLayout("drop");
}
rates.forEach((rate, i) => {
  if (!byMode.batched || !byMode["per-heartbeat"]) return;
  const batched = byMode.batched?.[i] as LoadSummary;
  const single = byMode["per-heartbeat"]?.[i] as LoadSummary;
  console.log(
    `at ${rate}/s: batched ${batched.achievedRate.toFixed(0)}/s p99 ${batched.p99Ms.toFixed(1)} ms vs one-per-heartbeat ${single.achievedRate.toFixed(0)}/s p99 ${single.p99Ms.toFixed(1)} ms: throughput ratio ${(batched.achievedRate / single.achievedRate).toFixed(2)}x, p99 ratio ${(single.p99Ms / batched.p99Ms).toFixed(1)}x`,
  );
});

await database.close();
await pg.stop();
