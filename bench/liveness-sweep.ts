/**
 * OFFLINE sweep benchmark (not a test): 100,000 servers with agents on a real
 * PostgreSQL, 1% of them silent; times the one-statement sweep.
 *
 *   node --import tsx bench/liveness-sweep.ts [--servers 100000] [--runs 15]
 */
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { sweepLiveness } from "../core/agents/liveness.js";
import { openDatabase } from "../db/client.js";
import { newId } from "../db/ids.js";
import { clusters, owners } from "../db/schema.js";
import { startPostgres } from "../test/support/postgres.js";

const { values } = parseArgs({ options: { servers: { type: "string", default: "100000" }, runs: { type: "string", default: "15" } } });
const count = Number(values.servers);
const runs = Number(values.runs);
const TIMEOUT = 40;

const pg = await startPostgres();
const database = await openDatabase({ databaseUrl: pg.url, dataDir: "memory://" });
await database.migrate();
const db = database.db;
const ownerId = newId();
await db.insert(owners).values({ id: ownerId, name: "bench" });
const clusterId = newId();
await db.insert(clusters).values({ id: clusterId, ownerId, name: "bench" });
await db.execute(sql`insert into servers (id, owner_id, cluster_id, name, host, auth_method, status)
  select gen_random_uuid(), ${ownerId}::uuid, ${clusterId}::uuid, 's' || g, '10.0.' || (g / 250) || '.' || (g % 250), 'password', 'ONLINE'
  from generate_series(1, ${count}) g`);
await db.execute(sql`insert into agents (server_id, token_hash, last_heartbeat_at) select id, md5(id::text), now() from servers`);
await db.execute(sql`analyze`);

const times: number[] = [];
for (let i = 0; i < runs; i++) {
  // 1% fall silent; the rest stay fresh; ingestion is caught up.
  await db.execute(sql`update agents set last_heartbeat_at = case when random() < 0.01 then now() - interval '60 seconds' else now() end`);
  await db.execute(sql`update servers set status = 'ONLINE'`);
  // The resets above rewrite every row; autovacuum would clean up after them in a real fleet.
  await db.execute(sql`vacuum analyze agents, servers`);
  await db.execute(
    sql`insert into ingestion_progress values ('bench', now(), now()) on conflict (instance_id) do update set caught_up_to = now(), updated_at = now()`,
  );
  const started = performance.now();
  const result = await sweepLiveness(db, TIMEOUT);
  times.push(performance.now() - started);
  if (i === 0) console.log(`first sweep: ${result.offline} OFFLINE, ${result.online} ONLINE`);
}
times.sort((a, b) => a - b);
console.log(
  `${count} servers, ${runs} sweeps: median ${times[Math.floor(runs / 2)]?.toFixed(1)} ms, min ${times[0]?.toFixed(1)} ms, max ${times.at(-1)?.toFixed(1)} ms (target < 100 ms)`,
);
await database.close();
await pg.stop();
