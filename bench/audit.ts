/**
 * What the audit trail costs an RPC (not a test): p50 and p90 latency of UpdateCluster, an
 * audited change, through two APIs on one database in one run, one with the audit interceptor
 * (every call appends its entry and its outbox event before answering) and one without;
 * the two are called in alternating blocks so both see the same database state and load.
 * Budget: under 1 ms more at p50. Also the cost of `verify` per entry.
 *
 *   node --import tsx bench/audit.ts [--backend postgres|pglite] [--calls 2000] [--block 100]
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { verifyAuditChain } from "../core/audit/verify.js";
import { openDatabase } from "../db/client.js";
import { startTestApi } from "../test/support/api.js";
import { startPostgres } from "../test/support/postgres.js";

const { values } = parseArgs({
  options: {
    backend: { type: "string", default: "postgres" },
    calls: { type: "string", default: "2000" },
    block: { type: "string", default: "100" },
  },
});
const calls = Number(values.calls);
const block = Number(values.block);

const pg = values.backend === "postgres" ? await startPostgres() : undefined;
const database = await openDatabase({ databaseUrl: pg?.url, dataDir: "memory://", poolSize: 20 });
const audited = await startTestApi({ database });
const plain = await startTestApi({ database, audit: false });
const { token, ownerId } = await audited.newOwner("bench");
const clients = { audited: audited.clients(token).clusters, plain: plain.clients(token).clusters };
const clusterId = (await clients.plain.createCluster({ name: "bench" })).cluster!.id;

/** CPU seconds of a process from /proc (user, system, and its waited-for children's). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0) / 100;
  } catch {
    return 0;
  }
}
const postmaster = pg
  ? Number(execFileSync("pgrep", ["-f", `postgres -D .* -p ${new URL(pg.url).port}`], { encoding: "utf8" }).trim())
  : undefined;
const postgresCpu = () =>
  postmaster === undefined
    ? 0
    : cpuSeconds(postmaster) +
      execFileSync("pgrep", ["-P", String(postmaster)], { encoding: "utf8" })
        .split("\n")
        .filter(Boolean)
        .reduce((sum, pid) => sum + cpuSeconds(Number(pid)), 0);
const ownCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const samples: Record<keyof typeof clients, number[]> = { audited: [], plain: [] };
const cpu = { audited: { own: 0, postgres: 0 }, plain: { own: 0, postgres: 0 } };
let n = 0;
const run = async (which: keyof typeof clients, count: number) => {
  const own = ownCpu();
  const postgres = postgresCpu();
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await clients[which].updateCluster({ id: clusterId, description: `d${n++}` });
    samples[which].push(performance.now() - started);
  }
  // The block's appends, done off the answers' path, are counted in its CPU: a list that matches nothing waits for them.
  if (which === "audited") await audited.clients(token).audit.listAuditEvents({ action: "-", pageSize: 1 });
  cpu[which].own += ownCpu() - own;
  cpu[which].postgres += postgresCpu() - postgres;
};
// Warm-up: connections, JIT, the chain head's row.
await run("audited", 200);
await run("plain", 200);
samples.audited.length = 0;
samples.plain.length = 0;
for (let done = 0; done < calls; done += block) {
  await run("audited", block);
  await run("plain", block);
}

const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};
const p50 = { audited: quantile(samples.audited, 0.5), plain: quantile(samples.plain, 0.5) };
const p90 = { audited: quantile(samples.audited, 0.9), plain: quantile(samples.plain, 0.9) };
const verifyStarted = performance.now();
const verified = await verifyAuditChain(database.db, ownerId);
const verifyMs = performance.now() - verifyStarted;

console.log(`backend ${values.backend}, ${calls} UpdateCluster calls each, blocks of ${block}, load ${loadavg()[0]?.toFixed(2)}`);
console.log(
  `p50  without audit ${p50.plain.toFixed(3)} ms   with audit ${p50.audited.toFixed(3)} ms   +${(p50.audited - p50.plain).toFixed(3)} ms   ratio ${(p50.audited / p50.plain).toFixed(2)}`,
);
console.log(
  `p90  without audit ${p90.plain.toFixed(3)} ms   with audit ${p90.audited.toFixed(3)} ms   +${(p90.audited - p90.plain).toFixed(3)} ms`,
);
console.log(
  `verify: ${verified.ok ? "intact" : "BROKEN"}, ${verified.checked} entries in ${verifyMs.toFixed(0)} ms (${((verifyMs / Math.max(1, verified.checked)) * 1000).toFixed(1)} µs each)`,
);
const perCall = (seconds: number) => ((seconds / calls) * 1e6).toFixed(0);
console.log(
  `CPU per call: API+client process ${perCall(cpu.plain.own)} → ${perCall(cpu.audited.own)} µs, PostgreSQL ${perCall(cpu.plain.postgres)} → ${perCall(cpu.audited.postgres)} µs`,
);
console.log(`budget (under 1 ms more at p50): ${p50.audited - p50.plain < 1 ? "met" : "MISSED"}`);

await plain.close().catch(() => {});
await audited.close().catch(() => {});
await pg?.stop();
