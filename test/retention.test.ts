// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { eq, inArray, sql } from "drizzle-orm";
import { pruneRetained } from "../core/agents/retention.js";
import { type DatabaseHandle, openDatabase } from "../db/client.js";
import { newId } from "../db/ids.js";
import { ingestionProgress, outboxEvents } from "../db/schema.js";
import { testBackends } from "./support/backends.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

const hoursAgo = (h: number) => new Date(Date.now() - h * 3600_000);
const settings = { outboxRelayed: true, outboxRetentionHours: 24, ingestionProgressRetentionHours: 2, heartbeatTimeoutSeconds: 40 };

for (const backend of testBackends()) {
  describe(`retention on ${backend}`, () => {
    let pg: TestPostgres | undefined;
    let database: DatabaseHandle;
    before(async () => {
      if (backend === "postgres") pg = await startPostgres();
      database = await openDatabase({ databaseUrl: pg?.url, dataDir: "memory://" });
      await database.migrate();
    });
    after(async () => {
      await database?.close();
      await pg?.stop();
    });

    test("published outbox events older than the retention are deleted; unpublished ones, or ones alerting has not read, never are", async () => {
      const event = (createdHoursAgo: number, publishedHoursAgo: number | null) => ({
        id: newId(),
        topic: "axion.server.events",
        key: "k",
        type: "server.status_changed",
        payload: {},
        createdAt: hoursAgo(createdHoursAgo),
        publishedAt: publishedHoursAgo === null ? null : hoursAgo(publishedHoursAgo),
        alertsCheckedAt: hoursAgo(createdHoursAgo),
      });
      const oldPublished = Array.from({ length: 12_000 }, () => event(50, 49));
      const recentPublished = event(2, 1);
      const oldUnpublished = event(100, null);
      const oldUnread = { ...event(50, 49), alertsCheckedAt: null };
      for (let i = 0; i < oldPublished.length; i += 2000) await database.db.insert(outboxEvents).values(oldPublished.slice(i, i + 2000));
      await database.db.insert(outboxEvents).values([recentPublished, oldUnpublished, oldUnread]);

      const pruned = await pruneRetained(database.db, settings);
      assert.equal(pruned.outboxEvents, oldPublished.length);
      const left = await database.db.select({ id: outboxEvents.id }).from(outboxEvents);
      assert.deepEqual(left.map((r) => r.id).sort(), [recentPublished.id, oldUnpublished.id, oldUnread.id].sort());
    });

    test("without Kafka the outbox is still pruned: events older than the retention are deleted once alerting has read them", async () => {
      await database.db.delete(outboxEvents);
      const event = (createdHoursAgo: number, alertsRead: boolean) => ({
        id: newId(),
        topic: "axion.server.events",
        key: "k",
        type: "server.status_changed",
        payload: {},
        createdAt: hoursAgo(createdHoursAgo),
        publishedAt: null,
        alertsCheckedAt: alertsRead ? hoursAgo(createdHoursAgo) : null,
      });
      const old = Array.from({ length: 6_000 }, () => event(50, true));
      const recent = event(2, true);
      const oldUnread = event(50, false);
      for (let i = 0; i < old.length; i += 2000) await database.db.insert(outboxEvents).values(old.slice(i, i + 2000));
      await database.db.insert(outboxEvents).values([recent, oldUnread]);

      const relayed = await pruneRetained(database.db, { ...settings, outboxRelayed: true });
      assert.equal(relayed.outboxEvents, 0, "with a relay, an unpublished event waits for it");
      const pruned = await pruneRetained(database.db, { ...settings, outboxRelayed: false });
      assert.equal(pruned.outboxEvents, old.length);
      const left = await database.db.select({ id: outboxEvents.id }).from(outboxEvents);
      assert.deepEqual(left.map((r) => r.id).sort(), [recent.id, oldUnread.id].sort());
      await database.db.delete(outboxEvents);
    });

    test("progress rows of gone ingestion instances are deleted; rows liveness still reads are kept", async () => {
      const row = (instanceId: string, updatedHoursAgo: number) => ({
        instanceId,
        caughtUpTo: hoursAgo(updatedHoursAgo),
        updatedAt: hoursAgo(updatedHoursAgo),
        runningSince: hoursAgo(updatedHoursAgo + 1),
      });
      await database.db.insert(ingestionProgress).values([row("gone", 3), row("recent", 1), row("live", 0)]);
      const pruned = await pruneRetained(database.db, settings);
      assert.equal(pruned.ingestionProgress, 1);
      const left = await database.db.select({ id: ingestionProgress.instanceId }).from(ingestionProgress);
      assert.deepEqual(left.map((r) => r.id).sort(), ["live", "recent"]);

      // A retention shorter than what the liveness sweep reads (two timeouts) never deletes a row it reads.
      await database.db
        .update(ingestionProgress)
        .set({ updatedAt: sql`now() - interval '60 seconds'` })
        .where(eq(ingestionProgress.instanceId, "recent"));
      const short = await pruneRetained(database.db, { ...settings, ingestionProgressRetentionHours: 0 });
      assert.equal(short.ingestionProgress, 0, "60 s old is within two 40 s timeouts");
      // Nor one of an instance not yet declared dead (AGENT_INSTANCE_DEAD_AFTER), which still holds the sweep back.
      await database.db
        .update(ingestionProgress)
        .set({ updatedAt: sql`now() - interval '90 minutes'` })
        .where(eq(ingestionProgress.instanceId, "recent"));
      const frozen = await pruneRetained(database.db, { ...settings, ingestionProgressRetentionHours: 1, instanceDeadAfterSeconds: 7200 });
      assert.equal(frozen.ingestionProgress, 0, "90 minutes without a report is within a 2 h dead-after");
      await database.db.delete(ingestionProgress).where(inArray(ingestionProgress.instanceId, ["live", "recent"]));
    });
  });
}
