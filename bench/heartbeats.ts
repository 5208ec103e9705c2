/**
 * Heartbeat ingestion benchmark (not a test): simulated agents on loopback send
 * real `Heartbeat` calls (Connect JSON over HTTP/1.1) to the real API on a real
 * PostgreSQL; prints throughput and latency percentiles, then the same load
 * against one UPDATE per heartbeat for comparison.
 *
 *   node --import tsx bench/heartbeats.ts [--agents 2000] [--seconds 20] [--concurrency 256]
 */
import { Agent, request } from "node:http";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { issueAgentToken } from "../core/agent-tokens.js";
import { newId } from "../db/ids.js";
import { clusters, owners, servers } from "../db/schema.js";
import { startTestApi } from "../test/support/api.js";
import { startPostgres } from "../test/support/postgres.js";

const { values } = parseArgs({
  options: {
    agents: { type: "string", default: "2000" },
    seconds: { type: "string", default: "20" },
    concurrency: { type: "string", default: "256" },
  },
});
const agentCount = Number(values.agents);
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);

const pg = await startPostgres();
const api = await startTestApi({ databaseUrl: pg.url });
const db = api.database.db;

// A fleet: one owner, one cluster, N servers with agent tokens.
const ownerId = newId();
await db.insert(owners).values({ id: ownerId, name: "bench" });
const clusterId = newId();
await db.insert(clusters).values({ id: clusterId, ownerId, name: "bench" });
const fleet: { id: string; token: string }[] = [];
for (let i = 0; i < agentCount; i++) {
  const id = newId();
  await db
    .insert(servers)
    .values({ id, ownerId, clusterId, name: `s${i}`, host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, authMethod: "password" });
  fleet.push({ id, token: await issueAgentToken(db, id) });
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: concurrency });
function heartbeat(server: { id: string; token: string }, path: string): Promise<number> {
  const body = JSON.stringify({
    serverId: server.id,
    sampleTime: new Date().toISOString(),
    metrics: {
      cpuPercent: 12.5,
      memoryUsedBytes: "1000000",
      memoryTotalBytes: "8000000",
      disks: [{ mount: "/", usedBytes: "5", totalBytes: "10" }],
      load1: 0.1,
      uptimeSeconds: "99",
    },
  });
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: api.port,
        path,
        method: "POST",
        agent: keepAlive,
        headers: { "content-type": "application/json", authorization: `Bearer ${server.token}` },
      },
      (res) => {
        res.resume();
        res.on("end", () => (res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`HTTP ${res.statusCode}`))));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function load(label: string, send: (s: { id: string; token: string }) => Promise<number>) {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const server = fleet[next++ % fleet.length] as { id: string; token: string };
        try {
          latencies.push(await send(server));
        } catch {
          errors++;
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]?.toFixed(1);
  const rate = latencies.length / seconds;
  console.log(`${label.padEnd(28)} ${rate.toFixed(0).padStart(7)} heartbeats/s   p50 ${pct(50)} ms   p99 ${pct(99)} ms   errors ${errors}`);
  return rate;
}

console.log(`${agentCount} simulated agents, ${concurrency} requests in flight, ${seconds} s per run, PostgreSQL on loopback`);
const batched = await load("batched ingestion (API)", (s) => heartbeat(s, "/axion.infrastructure.v1.AgentService/Heartbeat"));

// Baseline: the same calls, each written with its own UPDATE + INSERT (what a naive handler does).
const single = await load("one UPDATE per heartbeat", async (s) => {
  const started = performance.now();
  await db.transaction(async (tx) => {
    await tx.execute(
      sql`update agents set last_heartbeat_at = now(), latest_metrics = ${JSON.stringify({ cpuPercent: 12.5 })}::jsonb where server_id = ${s.id}`,
    );
    await tx.execute(
      sql`insert into metrics_samples (server_id, sampled_at, received_at, metrics) values (${s.id}, now(), now(), '{}'::jsonb)`,
    );
  });
  return performance.now() - started;
});
console.log(
  `ratio batched / one-per-heartbeat: ${(batched / single).toFixed(2)}x (the baseline skips HTTP and auth, so it flatters itself)`,
);

await api.close();
await pg.stop();
keepAlive.destroy();
