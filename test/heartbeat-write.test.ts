// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { eq, sql } from "drizzle-orm";
import { type HeartbeatIngestor, startHeartbeatIngestor } from "../core/agents/heartbeat-ingest.js";
import { type DatabaseHandle, openDatabase } from "../db/client.js";
import { newId } from "../db/ids.js";
import { agents, metricSamplesRaw } from "../db/schema.js";
import { testBackends } from "./support/backends.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

/** What a heartbeat costs the database stays bounded: each agent's row is rewritten in place, and the latest state is the newest heartbeat. */
const FLEET = 1000;
const ROUNDS = 5;
/** Each round of heartbeats is written in this many batches, each spread over the whole fleet, as arrivals are. */
const BATCHES = 10;

const rowsOf = <T>(result: unknown): T[] => (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];

for (const backend of testBackends()) {
  describe(`heartbeat writes on ${backend}`, () => {
    let pg: TestPostgres | undefined;
    let database: DatabaseHandle;
    let ingestor: HeartbeatIngestor;
    const fleet = Array.from({ length: FLEET }, () => newId());

    before(async () => {
      if (backend === "postgres") pg = await startPostgres();
      database = await openDatabase({ databaseUrl: pg?.url, dataDir: "memory://" });
      await database.migrate();
      const db = database.db;
      const ownerId = newId();
      const clusterId = newId();
      await db.execute(sql`insert into owners (id, name) values (${ownerId}, 'writes')`);
      await db.execute(sql`insert into clusters (id, owner_id, name) values (${clusterId}, ${ownerId}, 'writes')`);
      const rows = JSON.stringify(fleet.map((id, i) => ({ id, i })));
      await db.execute(sql`insert into servers (id, owner_id, cluster_id, name, host, auth_method, status)
        select v.id, ${ownerId}::uuid, ${clusterId}::uuid, 'w' || v.i, '10.66.' || (v.i / 256) || '.' || (v.i % 256), 'password', 'ONLINE'
        from jsonb_to_recordset(${rows}::jsonb) as v(id uuid, i int)`);
      // Registered agents as the install leaves them: token hash and host facts, no heartbeat yet.
      await db.execute(sql`insert into agents (server_id, token_hash, info, registered_at)
        select v.id, md5(v.id::text) || md5(v.i::text), '{"hostname":"web","os":"Debian GNU/Linux 12","arch":"x86_64","cpuCount":2}'::jsonb, now()
        from jsonb_to_recordset(${rows}::jsonb) as v(id uuid, i int)`);
      ingestor = startHeartbeatIngestor(db, { instanceId: `writes-${backend}` });
    });
    after(async () => {
      await ingestor?.stop();
      await database?.close();
      await pg?.stop();
    });

    const heartbeat = (serverId: string, cpuPercent: number) =>
      ingestor.submit({
        serverId,
        sampledAt: new Date(),
        metrics: {
          cpuPercent,
          memoryUsedBytes: "1048576000",
          memoryTotalBytes: "8388608000",
          disks: [{ mount: "/", usedBytes: "5368709120", totalBytes: "42949672960" }],
          load1: 0.42,
          uptimeSeconds: "86400",
        },
      });
    /** The heap page each agent's row is on. */
    const pages = async () =>
      new Map(
        rowsOf<{ server_id: string; page: number }>(
          await database.db.execute(sql`select server_id, (ctid::text::point)[0]::int as page from agents`),
        ).map((r) => [r.server_id, Number(r.page)]),
      );
    const relationBytes = async (name: string) =>
      Number(rowsOf<{ bytes: string }>(await database.db.execute(sql`select pg_relation_size(${name}) as bytes`))[0]?.bytes);

    test("steady heartbeats update each agent's row in place: rows keep their page and the primary key index does not grow", async () => {
      // The first heartbeat of each agent sets last_heartbeat_at and the latest metrics (the row grows once).
      await Promise.all(fleet.map((id) => heartbeat(id, 1)));
      const pagesBefore = await pages();
      const indexBefore = await relationBytes("agents_pkey");
      for (let round = 0; round < ROUNDS; round++) {
        for (let b = 0; b < BATCHES; b++)
          await Promise.all(fleet.filter((_, i) => i % BATCHES === b).map((id) => heartbeat(id, round + 2)));
      }
      const pagesAfter = await pages();
      const moved = fleet.filter((id) => pagesBefore.get(id) !== pagesAfter.get(id)).length;
      // A row that must move to another page is a new index entry (no HOT update); a few may while pages are pruned.
      assert.ok(moved <= FLEET * 0.02, `${moved} of ${FLEET} agent rows moved to another page in ${ROUNDS} rounds of heartbeats`);
      assert.equal(await relationBytes("agents_pkey"), indexBefore, "the agents' primary key index did not grow");
    });

    test("of one server's heartbeats written together, the newest is its latest state, and every one is a raw sample", async () => {
      const id = fleet[0] as string;
      await database.db.delete(metricSamplesRaw).where(eq(metricSamplesRaw.serverId, id));
      await Promise.all([heartbeat(id, 31), heartbeat(id, 32), heartbeat(id, 33)]);
      const [agent] = await database.db.select().from(agents).where(eq(agents.serverId, id));
      assert.equal(agent?.latestMetrics?.cpuPercent, 33);
      assert.deepEqual(agent?.latestMetrics?.disks, [{ mount: "/", usedBytes: "5368709120", totalBytes: "42949672960" }]);
      const samples = await database.db.select().from(metricSamplesRaw).where(eq(metricSamplesRaw.serverId, id));
      assert.deepEqual(samples.map((s) => s.cpuPercent).sort(), [31, 32, 33]);
    });
  });
}
