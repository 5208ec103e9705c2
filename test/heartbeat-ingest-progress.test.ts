import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { eq, sql } from "drizzle-orm";
import { startHeartbeatIngestor } from "../core/agents/heartbeat-ingest.js";
import { type DatabaseHandle, openDatabase } from "../db/client.js";
import { newId } from "../db/ids.js";
import { ingestionProgress } from "../db/schema.js";

/** What an API instance's ingestion progress claims when its process was frozen, and when it stops. */
let database: DatabaseHandle;
const serverId = newId();

before(async () => {
  database = await openDatabase({ dataDir: "memory://" });
  await database.migrate();
  const ownerId = newId();
  const clusterId = newId();
  await database.db.execute(sql`insert into owners (id, name) values (${ownerId}, 'progress')`);
  await database.db.execute(sql`insert into clusters (id, owner_id, name) values (${clusterId}, ${ownerId}, 'progress')`);
  await database.db.execute(sql`insert into servers (id, owner_id, cluster_id, name, host, auth_method, status)
    values (${serverId}, ${ownerId}, ${clusterId}, 'p', '10.66.0.1', 'password', 'ONLINE')`);
  await database.db.execute(sql`insert into agents (server_id, token_hash, registered_at) values (${serverId}, ${"x".repeat(64)}, now())`);
});
after(() => database?.close());

const progressOf = async (instanceId: string) =>
  (await database.db.select().from(ingestionProgress).where(eq(ingestionProgress.instanceId, instanceId)))[0];

test("after a freeze, progress stays before it until the requests that waited in the sockets have been read", async () => {
  const ingestor = startHeartbeatIngestor(database.db, { instanceId: "frozen", idleProgressMs: 100 });
  try {
    await ingestor.submit({ serverId, metrics: { cpuPercent: 1 } });
    const frozenAt = Date.now();
    // The event loop stops for 3 s, as in a SIGSTOP: whatever reached the sockets meanwhile is not seen by any code.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000);
    const thawedAt = Date.now();
    await ingestor.submit({ serverId, metrics: { cpuPercent: 2 } });
    const justAfter = await progressOf("frozen");
    assert.ok(
      justAfter!.caughtUpTo.getTime() <= frozenAt,
      `claims ${justAfter!.caughtUpTo.toISOString()} right after a freeze from ${new Date(frozenAt).toISOString()}`,
    );
    // Once the loop has turned for a while (the hold is 2 s), progress moves on again.
    await new Promise((r) => setTimeout(r, 2500));
    await ingestor.submit({ serverId, metrics: { cpuPercent: 3 } });
    assert.ok((await progressOf("frozen"))!.caughtUpTo.getTime() > thawedAt);
  } finally {
    await ingestor.stop();
  }
});

test("an instance that stops removes its progress: it holds no heartbeat back", async () => {
  const ingestor = startHeartbeatIngestor(database.db, { instanceId: "stopping" });
  await ingestor.submit({ serverId, metrics: { cpuPercent: 1 } });
  assert.ok(await progressOf("stopping"));
  await ingestor.stop();
  assert.equal(await progressOf("stopping"), undefined);
});
