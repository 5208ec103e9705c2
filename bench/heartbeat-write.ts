/**
 * PostgreSQL's CPU per heartbeat, before and after the metric tiers, in one run
 * (not a test). A real PostgreSQL with a fleet of servers and agents; the real
 * ingestor of each version (bench/previous-heartbeat-ingest.ts is the one before)
 * gets the same heartbeats, parsed by the real intake, in rounds of `--batch`
 * (one group-commit batch each). The phases alternate (before, after, before,
 * after, ...) on the same database, each on its own table layout: before, the
 * jsonb `metrics_samples` table with its foreign key and two indexes, the
 * index on agents.last_heartbeat_at, jsonb latest metrics and agents packed
 * full; after, the schema as migrated. CPU is read
 * from /proc for every PostgreSQL process (postmaster, backends, autovacuum,
 * WAL writer, checkpointer; exited backends through the postmaster's
 * children's time) and from process.cpuUsage() for the ingestor's process;
 * the share of agent row updates that were HOT from pg_stat_user_tables.
 *
 *   node --import tsx bench/heartbeat-write.ts [--agents 10000] [--batch 500] [--rounds 100] [--pairs 2]
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { type HeartbeatIngestor, startHeartbeatIngestor } from "../core/agents/heartbeat-ingest.js";
import { heartbeatRecord, parseHeartbeatJson } from "../core/agents/heartbeat-intake.js";
import { openDatabase } from "../db/client.js";
import { newId } from "../db/ids.js";
import { startPostgres } from "../test/support/postgres.js";
import { startPreviousHeartbeatIngestor } from "./previous-heartbeat-ingest.js";

const { values } = parseArgs({
  options: {
    agents: { type: "string", default: "10000" },
    batch: { type: "string", default: "500" },
    rounds: { type: "string", default: "100" },
    pairs: { type: "string", default: "2" },
  },
});
const agentCount = Number(values.agents);
const batchSize = Number(values.batch);
const rounds = Number(values.rounds);
const pairs = Number(values.pairs);

const pg = await startPostgres();
const database = await openDatabase({ databaseUrl: pg.url, dataDir: "memory://", poolSize: 4 });
await database.migrate();
const db = database.db;

const ownerId = newId();
const clusterId = newId();
await db.execute(sql`insert into owners (id, name) values (${ownerId}, 'bench')`);
await db.execute(sql`insert into clusters (id, owner_id, name) values (${clusterId}, ${ownerId}, 'bench')`);
const ids = Array.from({ length: agentCount }, () => newId());
for (let at = 0; at < ids.length; at += 5000) {
  const rows = JSON.stringify(ids.slice(at, at + 5000).map((id, i) => ({ id, i: at + i })));
  await db.execute(sql`insert into servers (id, owner_id, cluster_id, name, host, auth_method, status)
    select v.id, ${ownerId}::uuid, ${clusterId}::uuid, 's' || v.i, '10.' || (v.i / 65536) || '.' || (v.i / 256 % 256) || '.' || (v.i % 256), 'password', 'ONLINE'
    from jsonb_to_recordset(${rows}::jsonb) as v(id uuid, i int)`);
  await db.execute(sql`insert into agents (server_id, token_hash, info)
    select v.id, md5(v.id::text) || md5(v.i::text), '{"hostname":"web","os":"Debian GNU/Linux 12","arch":"x86_64","cpuCount":2}'::jsonb
    from jsonb_to_recordset(${rows}::jsonb) as v(id uuid, i int)`);
}

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
const ownCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** What the load generator's agents send (bench/heartbeat-load). */
const body = (serverId: string, cpu: number) =>
  JSON.stringify({
    serverId,
    sampleTime: new Date().toISOString(),
    metrics: {
      cpuPercent: cpu,
      memoryUsedBytes: "1048576000",
      memoryTotalBytes: "8388608000",
      disks: [{ mount: "/", usedBytes: "5368709120", totalBytes: "42949672960" }],
      load1: 0.42,
      load5: 0.36,
      load15: 0.3,
      uptimeSeconds: "86400",
    },
  });

const rowsOf = <T>(result: unknown): T[] => (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
/** The agents table's storage parameters as migrated (fillfactor), restored after each "before" phase. */
const agentsOptions = rowsOf<{ options: string[] | null }>(
  await db.execute(sql`select reloptions as options from pg_class where relname = 'agents'`),
)[0]?.options;

/**
 * The layout before this work (migration 0005): the jsonb samples table with its foreign key and two indexes,
 * the index on agents.last_heartbeat_at, latest metrics as jsonb and agents packed full (fillfactor 100). The
 * type changes rewrite the agents table, so each phase starts with its own layout's pages.
 */
async function previousLayout(action: "create" | "drop"): Promise<void> {
  const statements =
    action === "create"
      ? [
          `create table metrics_samples (server_id uuid not null references servers(id) on delete cascade,
             sampled_at timestamptz not null, received_at timestamptz not null, metrics jsonb not null)`,
          "create index metrics_samples_server_id_sampled_at_idx on metrics_samples (server_id, sampled_at)",
          "create index metrics_samples_received_at_idx on metrics_samples (received_at)",
          "create index agents_last_heartbeat_at_idx on agents (last_heartbeat_at)",
          "alter table agents reset (fillfactor)",
          "alter table agents alter column latest_metrics type jsonb using latest_metrics::jsonb",
        ]
      : [
          "drop table metrics_samples",
          "drop index agents_last_heartbeat_at_idx",
          agentsOptions?.length ? `alter table agents set (${agentsOptions.join(", ")})` : "alter table agents reset (fillfactor)",
          "alter table agents alter column latest_metrics type text",
        ];
  for (const statement of statements) await db.execute(sql.raw(statement));
}

/** Agent row updates so far and how many of them were HOT (in place, no index entry), from the statistics. */
async function agentUpdates(): Promise<{ updates: number; hot: number }> {
  // Backends report their counts within a second of going idle.
  await new Promise((r) => setTimeout(r, 1500));
  const [row] = rowsOf<{ updates: string; hot: string }>(
    await db.execute(sql`select n_tup_upd as updates, n_tup_hot_upd as hot from pg_stat_user_tables where relname = 'agents'`),
  );
  return { updates: Number(row?.updates), hot: Number(row?.hot) };
}

let cursor = 0;
async function phase(name: "before" | "after"): Promise<{ postgres: number; ingestor: number; wall: number; hot: number }> {
  if (name === "before") await previousLayout("create");
  await db.execute(sql`truncate metric_samples_raw`);
  await db.execute(sql.raw("vacuum analyze"));
  const ingestor: HeartbeatIngestor =
    name === "before"
      ? startPreviousHeartbeatIngestor(db, { instanceId: "bench-before" })
      : startHeartbeatIngestor(db, { instanceId: "bench-after" });
  const round = () =>
    Promise.all(
      Array.from({ length: batchSize }, () => {
        const id = ids[cursor++ % ids.length] as string;
        return ingestor.submit(heartbeatRecord(id, parseHeartbeatJson(body(id, cursor % 100)), Date.now()));
      }),
    );
  for (let i = 0; i < 10; i++) await round();
  const updatesBefore = await agentUpdates();
  const pgBefore = postgresCpu();
  const ownBefore = ownCpu();
  const started = Date.now();
  for (let i = 0; i < rounds; i++) await round();
  const result = {
    postgres: ((postgresCpu() - pgBefore) / (rounds * batchSize)) * 1e6,
    ingestor: ((ownCpu() - ownBefore) / (rounds * batchSize)) * 1e6,
    wall: (Date.now() - started) / rounds,
    hot: 0,
  };
  const updatesAfter = await agentUpdates();
  result.hot = (updatesAfter.hot - updatesBefore.hot) / (updatesAfter.updates - updatesBefore.updates);
  await ingestor.stop();
  if (name === "before") await previousLayout("drop");
  return result;
}

console.log(
  `${agentCount} agents, ${rounds} rounds of ${batchSize} heartbeats per phase, load average at start ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}`,
);
const totals = { before: { postgres: 0, ingestor: 0 }, after: { postgres: 0, ingestor: 0 } };
for (let p = 0; p < pairs; p++) {
  for (const name of ["before", "after"] as const) {
    const r = await phase(name);
    totals[name].postgres += r.postgres / pairs;
    totals[name].ingestor += r.ingestor / pairs;
    console.log(
      `${name.padEnd(7)} #${p + 1}  PostgreSQL ${r.postgres.toFixed(1).padStart(6)} µs/heartbeat  ingestor process ${r.ingestor.toFixed(1).padStart(6)} µs/heartbeat  ${r.wall.toFixed(0)} ms per batch  agent updates HOT ${(r.hot * 100).toFixed(0)} %  (load ${loadavg()[0]?.toFixed(1)})`,
    );
  }
}
console.log(
  `mean: PostgreSQL ${totals.before.postgres.toFixed(1)} → ${totals.after.postgres.toFixed(1)} µs per heartbeat (${((totals.after.postgres / totals.before.postgres) * 100).toFixed(0)} %), ingestor process ${totals.before.ingestor.toFixed(1)} → ${totals.after.ingestor.toFixed(1)} µs`,
);
await database.close();
await pg.stop();
