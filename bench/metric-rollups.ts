/**
 * Metric rollup benchmark (not a test): N servers with an hour of raw samples (one per 10 s, three mounts) and
 * one hostile agent whose every heartbeat carries 60 new mount names of 1,024 characters, on a real PostgreSQL;
 * times one scheduled pass (minute and hour rollups, then pruning) and prints the largest rollup row.
 *
 *   node --import tsx bench/metric-rollups.ts [--servers 1000] [--hostile 1|0]
 */
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { DEFAULT_METRIC_TIERS, rollUpMetrics } from "../core/agents/metric-tiers.js";
import { openDatabase } from "../db/client.js";
import { newId } from "../db/ids.js";
import { clusters, owners } from "../db/schema.js";
import { startPostgres } from "../test/support/postgres.js";

const { values } = parseArgs({ options: { servers: { type: "string", default: "1000" }, hostile: { type: "string", default: "1" } } });
const count = Number(values.servers);
const hostile = values.hostile !== "0";

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
  from generate_series(0, ${count}) g`);
// The hour before the last settled one: 360 samples per server.
const from = sql`date_trunc('hour', now()) - interval '2 hours'`;
await db.execute(sql`insert into metric_samples_raw
  select s.id, ${from} + make_interval(secs => t * 10), random() * 100, 1000, 2000, 1, 1, 1, 100,
    '[["/","' || (t * 1000) || '","1000000000"],["/data","5","10"],["/var/lib/docker","7","9"]]'
  from servers s, generate_series(0, 359) t where s.name <> 's0'`);
await db.execute(sql`insert into metric_samples_raw
  select s.id, ${from} + make_interval(secs => t * 10), 1, 1, 2, 1, 1, 1, 1,
    (select jsonb_agg(jsonb_build_array(rpad('/churn-' || t || '-' || m || '-', 1024, 'x'), '1', '2'))::text from generate_series(1, 60) m)
  from servers s, generate_series(0, 359) t where s.name = 's0' and ${hostile}`);
await db.execute(sql`analyze`);

const started = performance.now();
const result = await rollUpMetrics(db, DEFAULT_METRIC_TIERS);
const ms = performance.now() - started;
const [largest] = (await db.execute(
  sql`select max(pg_column_size(avg) + pg_column_size(min) + pg_column_size(max))::int as bytes from metric_rollups`,
)) as unknown as { bytes: number }[];
console.log(
  `${count} servers + 1 ${hostile ? "hostile" : "silent"}, 1 h of samples (${(count + 1) * 360} rows): one pass ${ms.toFixed(0)} ms, ` +
    `${result.minuteBuckets} minute and ${result.hourBuckets} hour buckets, ${result.failedServers} failed; largest rollup row ${largest?.bytes} bytes`,
);
await database.close();
await pg.stop();
