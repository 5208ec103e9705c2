// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { toBinary } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { and, eq, sql } from "drizzle-orm";
import { DEFAULT_METRIC_TIERS, type MetricTierSettings, rollUpMetrics } from "../core/agents/metric-tiers.js";
import { sqlState } from "../core/kernel/db-errors.js";
import { metricRollups, metricSamplesRaw } from "../db/schema.js";

import { ListMetricsResponseSchema, MetricsTier } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { startTestApi, type TestApi } from "./support/api.js";

import { expectCode } from "./support/assertions.js";
import { testBackends } from "./support/backends.js";
import { ed25519KeyPair } from "./support/keys.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

const key = ed25519KeyPair();
const MINUTE = 60_000;
const HOUR = 3_600_000;

for (const backend of testBackends()) {
  describe(`metric history tiers on ${backend}`, () => {
    let pg: TestPostgres | undefined;
    let api: TestApi;
    let owner: ReturnType<TestApi["clients"]>;
    let clusterId: string;
    let hosts = 1;

    before(async () => {
      if (backend === "postgres") pg = await startPostgres();
      api = await startTestApi({ databaseUrl: pg?.url });
      owner = api.clients((await api.newOwner()).token);
      clusterId = (await owner.clusters.createCluster({ name: "metrics" })).cluster!.id;
    });
    after(async () => {
      await api?.close();
      await pg?.stop();
    });

    const newServer = async () =>
      (
        await owner.servers.createServer({
          clusterId,
          name: `m-${hosts}`,
          host: `10.97.0.${hosts++}`,
          credential: { method: { case: "privateKey", value: { key: key.privateKey } } },
        })
      ).server!.id;
    /** The database's clock, truncated to the hour, minus `hours`. */
    const hourAgo = async (hours: number): Promise<number> => {
      const result = await api.database.db.execute(sql`select date_trunc('hour', now()) as at`);
      const rows = (Array.isArray(result) ? result : (result as { rows: { at: string }[] }).rows) as { at: string | Date }[];
      return new Date(rows[0]!.at).getTime() - hours * HOUR;
    };
    const sample = (serverId: string, at: number, cpu: number, disks: [string, number, number][] = []) => ({
      serverId,
      sampledAt: new Date(at),
      cpuPercent: cpu,
      memoryUsedBytes: BigInt(cpu * 100),
      memoryTotalBytes: 10_000n,
      load1: cpu / 10,
      load5: 1,
      load15: 1,
      uptimeSeconds: BigInt(Math.floor(at / 1000)),
      disks: JSON.stringify(disks.map(([mount, used, total]) => [mount, String(used), String(total)])),
    });
    const rollups = (serverId: string, seconds: number) =>
      api.database.db
        .select()
        .from(metricRollups)
        .where(and(eq(metricRollups.serverId, serverId), eq(metricRollups.resolutionSeconds, seconds)))
        .orderBy(metricRollups.bucket);
    /** Rollups follow the newest bucket of each tier, so each test starts from empty tiers. */
    const emptyTiers = async () => {
      await api.database.db.delete(metricRollups);
      await api.database.db.delete(metricSamplesRaw);
    };
    const keepAll: MetricTierSettings = { rawRetentionHours: 8760, minuteRetentionDays: 3650, hourRetentionDays: 36500 };

    test("minute and hour rollups hold each bucket's average, minimum and maximum, per mount too", async () => {
      await emptyTiers();
      const id = await newServer();
      const base = await hourAgo(3);
      await api.database.db.insert(metricSamplesRaw).values([
        sample(id, base, 10, [["/", 100, 1000]]),
        sample(id, base + 10_000, 20, [
          ["/", 200, 1000],
          ["/data", 50, 500],
        ]),
        sample(id, base + 20_000, 60, [
          ["/", 600, 1000],
          ["/data", 150, 500],
        ]),
        sample(id, base + MINUTE + 5_000, 40, [["/", 300, 1000]]),
        sample(id, base + HOUR + 30_000, 5, [["/", 700, 1000]]),
      ]);
      const first = await rollUpMetrics(api.database.db, keepAll);
      assert.ok(first.minuteBuckets >= 3 && first.hourBuckets >= 2, JSON.stringify(first));

      const minutes = await rollups(id, 60);
      assert.deepEqual(
        minutes.map((m) => [m.bucket.getTime() - base, m.samples]),
        [
          [0, 3],
          [MINUTE, 1],
          [HOUR, 1],
        ],
      );
      const m0 = minutes[0]!;
      assert.equal(m0.avg.cpuPercent, 30);
      assert.equal(m0.min.cpuPercent, 10);
      assert.equal(m0.max.cpuPercent, 60);
      assert.deepEqual([m0.avg.memoryUsedBytes, m0.min.memoryUsedBytes, m0.max.memoryUsedBytes], ["3000", "1000", "6000"]);
      assert.equal(m0.avg.load1, 3);
      assert.deepEqual(m0.avg.disks, [
        { mount: "/", usedBytes: "300", totalBytes: "1000" },
        { mount: "/data", usedBytes: "100", totalBytes: "500" },
      ]);
      assert.deepEqual(
        (m0.max.disks as { usedBytes: string }[]).map((d) => d.usedBytes),
        ["600", "150"],
      );
      assert.deepEqual(
        (m0.min.disks as { usedBytes: string }[]).map((d) => d.usedBytes),
        ["100", "50"],
      );

      const hours = await rollups(id, 3600);
      assert.deepEqual(
        hours.map((h) => [h.bucket.getTime() - base, h.samples, h.avg.cpuPercent, h.min.cpuPercent, h.max.cpuPercent]),
        [
          [0, 4, 32.5, 10, 60],
          [HOUR, 1, 5, 5, 5],
        ],
      );

      const again = await rollUpMetrics(api.database.db, keepAll);
      assert.deepEqual([again.minuteBuckets, again.hourBuckets], [0, 0], "each bucket is rolled up once");
    });

    test("a bucket that can still receive samples is not rolled up yet", async () => {
      await emptyTiers();
      const id = await newServer();
      const result = await api.database.db.execute(sql`select now() as at`);
      const rows = (Array.isArray(result) ? result : (result as { rows: { at: string }[] }).rows) as { at: string | Date }[];
      const now = new Date(rows[0]!.at).getTime();
      await api.database.db.insert(metricSamplesRaw).values([sample(id, now - 30_000, 50)]);
      await rollUpMetrics(api.database.db, keepAll);
      assert.equal((await rollups(id, 60)).length, 0, "within the settle window (5 min tolerance + 1 min)");
    });

    test("each tier is pruned past its own retention; rolled-up history outlives the raw samples", async () => {
      await emptyTiers();
      const id = await newServer();
      const base = await hourAgo(5);
      await api.database.db.insert(metricSamplesRaw).values([sample(id, base, 10), sample(id, base + 10_000, 30)]);
      const recentBase = await hourAgo(2);
      await api.database.db.insert(metricSamplesRaw).values([sample(id, recentBase, 70)]);
      const row = (bucket: number, seconds: number) => ({
        serverId: id,
        resolutionSeconds: seconds,
        bucket: new Date(bucket),
        samples: 1,
        avg: { cpuPercent: 1 },
        min: { cpuPercent: 1 },
        max: { cpuPercent: 1 },
      });
      await api.database.db
        .insert(metricRollups)
        .values([
          row(base - 3 * 86_400_000, 60),
          row(base - 1 * 86_400_000, 60),
          row(base - 40 * 86_400_000, 3600),
          row(base - 20 * 86_400_000, 3600),
        ]);
      const settings: MetricTierSettings = { rawRetentionHours: 3, minuteRetentionDays: 2, hourRetentionDays: 30 };
      const result = await rollUpMetrics(api.database.db, settings);
      assert.ok(result.pruned.raw >= 2 && result.pruned.minute >= 1 && result.pruned.hour >= 1, JSON.stringify(result.pruned));

      const raw = await api.database.db.select().from(metricSamplesRaw).where(eq(metricSamplesRaw.serverId, id));
      assert.deepEqual(
        raw.map((r) => r.cpuPercent),
        [70],
        "raw: only the last 3 hours",
      );
      const minutes = await rollups(id, 60);
      assert.deepEqual(
        minutes.map((m) => [m.bucket.getTime() - base, m.samples]),
        [
          [-1 * 86_400_000, 1],
          [0, 2],
          [recentBase - base, 1],
        ],
        "minute: 2 days; the pruned raw samples are rolled up first",
      );
      const hours = await rollups(id, 3600);
      assert.deepEqual(
        hours.map((h) => h.bucket.getTime() - base),
        [-20 * 86_400_000, 0, recentBase - base],
        "hour: 30 days",
      );
    });

    test("the ingestor's raw rows keep every field and any mount text exactly", async () => {
      await emptyTiers();
      const id = await newServer();
      await api.database.db.execute(sql`insert into agents (server_id, token_hash) values (${id}, 'x')`);
      const mount = '/mnt/a "b" \\c,{d} NULL \u00e9';
      await api.ingestor.submit({
        serverId: id,
        sampledAt: new Date(),
        metrics: {
          cpuPercent: 12.5,
          memoryUsedBytes: "1152921504606846976",
          memoryTotalBytes: "2",
          disks: [{ mount, usedBytes: "1152921504606846975", totalBytes: "1152921504606846976" }, { mount: "/" }],
          load1: 0.25,
          uptimeSeconds: "9",
        },
      });
      const [raw] = (await owner.agents.listMetrics({ id })).samples;
      assert.equal(raw?.metrics?.cpuPercent, 12.5);
      assert.equal(raw?.metrics?.memoryUsedBytes, 1n << 60n);
      assert.equal(raw?.metrics?.load1, 0.25);
      assert.equal(raw?.metrics?.load5, 0);
      assert.equal(raw?.metrics?.uptimeSeconds, 9n);
      assert.deepEqual(
        raw?.metrics?.disks.map((d) => [d.mount, d.usedBytes, d.totalBytes]),
        [
          [mount, (1n << 60n) - 1n, 1n << 60n],
          ["/", 0n, 0n],
        ],
      );
    });

    /** Bytes the database holds for a server's rollup rows of one tier: each row's, and all together. */
    const rollupSizes = async (serverId: string, seconds: number): Promise<number[]> => {
      const result = await api.database.db.execute(
        sql`select (pg_column_size(avg) + pg_column_size(min) + pg_column_size(max))::int as size from metric_rollups
          where server_id = ${serverId} and resolution_seconds = ${seconds} order by bucket`,
      );
      const rows = (Array.isArray(result) ? result : (result as { rows: { size: number }[] }).rows) as { size: number }[];
      return rows.map((r) => Number(r.size));
    };
    const churn = (tag: string, count: number, length: number): [string, number, number][] =>
      Array.from({ length: count }, (_, i) => [`/${tag}-${i}-`.padEnd(length, "x"), i + 1, 1000 + i]);
    /** A row of 32 mounts of 256 characters, in three sets, with room for the numbers. */
    const ROW_BOUND = 3 * 32 * (256 + 64) + 3 * 400;

    test("a bucket keeps at most 32 distinct mounts of names up to 256 characters, the ones seen most; the rest are counted, not stored", async () => {
      await emptyTiers();
      const id = await newServer();
      const base = await hourAgo(3);
      const stable: [string, number, number][] = [
        ["/", 10, 100],
        ["/data", 20, 200],
      ];
      await api.database.db
        .insert(metricSamplesRaw)
        .values(
          Array.from({ length: 6 }, (_, s) =>
            sample(id, base + s * 5_000, 10, [...stable, ...churn(`s${s}`, 60, 200), [`/long-${s}-`.padEnd(1024, "y"), 1, 1]]),
          ),
        );
      await rollUpMetrics(api.database.db, keepAll);
      for (const seconds of [60, 3600]) {
        const [row] = await rollups(id, seconds);
        for (const set of [row!.avg, row!.min, row!.max]) {
          const mounts = (set.disks as { mount: string }[]).map((d) => d.mount);
          assert.equal(mounts.length, 32, `${seconds}: 32 of the 368 distinct mounts`);
          assert.ok(mounts.includes("/") && mounts.includes("/data"), "the mounts of every sample are kept first");
          assert.ok(
            mounts.every((m) => m.length <= 256),
            "no name over 256 characters",
          );
          assert.equal(set.omittedDisks, 368 - 32, "the rest are counted");
        }
        assert.ok((await rollupSizes(id, seconds))[0]! <= ROW_BOUND, `${seconds}: a row is bounded`);
      }
    });

    test("mount churn over many buckets keeps every rollup row, and the tier, bounded", async () => {
      await emptyTiers();
      const id = await newServer();
      const base = await hourAgo(3);
      const rows = [];
      for (let minute = 0; minute < 60; minute++)
        for (let s = 0; s < 2; s++) rows.push(sample(id, base + minute * MINUTE + s * 20_000, 10, churn(`m${minute}s${s}`, 60, 200)));
      for (let i = 0; i < rows.length; i += 20) await api.database.db.insert(metricSamplesRaw).values(rows.slice(i, i + 20));
      await rollUpMetrics(api.database.db, keepAll);
      const minutes = await rollupSizes(id, 60);
      const hours = await rollupSizes(id, 3600);
      assert.equal(minutes.length, 60);
      assert.equal(hours.length, 1);
      for (const size of [...minutes, ...hours]) assert.ok(size <= ROW_BOUND, `a row of ${size} bytes`);
      const [hour] = await rollups(id, 3600);
      assert.equal(hour!.avg.omittedDisks, 60 * 2 * 60 - 32, "the hour saw 7,200 distinct mounts and keeps 32");
    });

    test("a server whose samples cannot be rolled up fails no other server's rollup, and pruning still runs", async () => {
      await emptyTiers();
      const good = await newServer();
      const bad = await newServer();
      const base = await hourAgo(3);
      await api.database.db
        .insert(metricSamplesRaw)
        .values([
          sample(good, base, 10, [["/", 1, 2]]),
          { ...sample(bad, base, 10), disks: '[["/","not a number","2"]]' },
          sample(good, base + MINUTE, 30),
          sample(good, base - 20 * HOUR, 50),
        ]);
      const result = await rollUpMetrics(api.database.db, { ...keepAll, rawRetentionHours: 12 });
      assert.deepEqual(
        (await rollups(good, 60)).map((m) => [m.bucket.getTime() - base, m.avg.cpuPercent]),
        [
          [-20 * HOUR, 50],
          [0, 10],
          [MINUTE, 30],
        ],
      );
      assert.equal((await rollups(bad, 60)).length, 0);
      assert.ok(result.failedServers >= 1, JSON.stringify(result));
      assert.ok(result.pruned.raw >= 1, "the sample of 20 hours ago is pruned");
    });

    test("pruning runs even when the database fails a rollup, and the failure is still reported", async () => {
      await emptyTiers();
      const id = await newServer();
      await api.database.db.insert(metricSamplesRaw).values([sample(id, (await hourAgo(20)) + 5_000, 50)]);
      // The database refuses the rollups' writes as it would while shutting down (not a data error: nothing to split).
      await api.database.db.execute(sql`create function refuse_rollups() returns trigger language plpgsql as $$
        begin raise exception 'rollups unavailable' using errcode = '57P01'; end $$`);
      await api.database.db.execute(
        sql`create trigger refuse_rollups before insert on metric_rollups for each row execute function refuse_rollups()`,
      );
      try {
        await assert.rejects(rollUpMetrics(api.database.db, { ...keepAll, rawRetentionHours: 12 }), (error) => sqlState(error) === "57P01");
      } finally {
        await api.database.db.execute(sql`drop trigger refuse_rollups on metric_rollups`);
        await api.database.db.execute(sql`drop function refuse_rollups()`);
      }
      assert.equal((await api.database.db.select().from(metricSamplesRaw).where(eq(metricSamplesRaw.serverId, id))).length, 0, "pruned");
    });

    test("ListMetrics answers at most a few MB, whatever the rows hold", async () => {
      await emptyTiers();
      const id = await newServer();
      const base = await hourAgo(3);
      // Rows as an earlier version wrote them: the union of every mount seen, thousands of long names.
      const huge = { cpuPercent: 1, disks: churn("legacy", 1500, 1000).map(([mount]) => ({ mount, usedBytes: "1", totalBytes: "2" })) };
      for (let i = 0; i < 3; i++)
        await api.database.db.insert(metricRollups).values({
          serverId: id,
          resolutionSeconds: 60,
          bucket: new Date(base + i * MINUTE),
          samples: 1,
          avg: huge,
          min: huge,
          max: huge,
        });
      const minute = await owner.agents.listMetrics({ id, startTime: timestampFromMs(base), stepSeconds: 60 });
      assert.equal(minute.tier, MetricsTier.MINUTE);
      assert.equal(minute.samples.length, 3);
      for (const s of minute.samples) {
        assert.ok(s.metrics!.disks.length <= 32 && s.metrics!.disks.every((d) => d.mount.length <= 256));
        assert.equal(s.max!.omittedDisks, 1500);
      }
      assert.ok(toBinary(ListMetricsResponseSchema, minute).length < 100_000, "names over 256 characters are left out");

      // Raw samples of 60 mounts of 250 characters: 300 of them are more than the answer's budget.
      const rows = Array.from({ length: 300 }, (_, i) => sample(id, base + i * 1000, i % 100, churn(`r${i}`, 60, 250)));
      for (let i = 0; i < rows.length; i += 50) await api.database.db.insert(metricSamplesRaw).values(rows.slice(i, i + 50));
      const first = await owner.agents.listMetrics({ id, startTime: timestampFromMs(base - 1000), limit: 5000 });
      assert.equal(first.tier, MetricsTier.RAW);
      const bytes = toBinary(ListMetricsResponseSchema, first).length;
      assert.ok(bytes <= 5 * 1024 * 1024, `${bytes} bytes`);
      assert.ok(first.truncated && first.samples.length > 0 && first.samples.length < 300, `${first.samples.length} samples`);
      assert.equal(first.samples[0]!.metrics!.disks.length, 32);
      assert.equal(first.samples[0]!.metrics!.omittedDisks, 28);
      const last = timestampMs(first.samples.at(-1)!.sampleTime!);
      const rest = await owner.agents.listMetrics({ id, startTime: timestampFromMs(last + 1), limit: 5000 });
      assert.equal(timestampMs(rest.samples[0]!.sampleTime!), last + 1000, "asking again from after the last one goes on");
      const all = await owner.agents.listMetrics({ id, startTime: timestampFromMs(base - 1000), limit: 10 });
      assert.ok(all.truncated && all.samples.length === 10, "the limit truncates too");
    });

    test("ListMetrics refuses a time the database cannot hold, naming the field", async () => {
      const id = await newServer();
      await expectCode(
        owner.agents.listMetrics({ id, startTime: { seconds: 10n ** 13n, nanos: 0 } }),
        Code.InvalidArgument,
        /^start_time:/,
      );
      await expectCode(owner.agents.listMetrics({ id, endTime: { seconds: -(10n ** 13n), nanos: 0 } }), Code.InvalidArgument, /^end_time:/);
    });

    test("ListMetrics picks the tier from the range and the step; every tier answers the same shape", async () => {
      await emptyTiers();
      const id = await newServer();
      const base = await hourAgo(3);
      await api.database.db.insert(metricSamplesRaw).values([sample(id, base, 10, [["/", 1, 2]]), sample(id, base + 10_000, 30)]);
      await api.database.db.insert(metricRollups).values({
        serverId: id,
        resolutionSeconds: 3600,
        bucket: new Date(base - 30 * 86_400_000),
        samples: 360,
        avg: { cpuPercent: 5 },
        min: { cpuPercent: 1 },
        max: { cpuPercent: 9 },
      });
      await rollUpMetrics(api.database.db, DEFAULT_METRIC_TIERS);
      const ask = (startMs: number, stepSeconds = 0) =>
        owner.agents.listMetrics({ id, startTime: timestampFromMs(startMs), stepSeconds, limit: 100 });

      const raw = await ask(base - MINUTE);
      assert.equal(raw.tier, MetricsTier.RAW, "3 h back with no step: raw (kept 6 h)");
      assert.deepEqual(
        raw.samples.map((s) => [s.metrics?.cpuPercent, s.min?.cpuPercent, s.max?.cpuPercent, s.sampleCount]),
        [
          [10, 10, 10, 1],
          [30, 30, 30, 1],
        ],
      );
      assert.equal(raw.samples[0]?.metrics?.disks[0]?.usedBytes, 1n);

      const minute = await ask(base - MINUTE, 60);
      assert.equal(minute.tier, MetricsTier.MINUTE, "a one-minute step: the minute tier");
      assert.deepEqual(
        minute.samples.map((s) => [
          Number(s.sampleTime?.seconds) * 1000 - base,
          s.metrics?.cpuPercent,
          s.min?.cpuPercent,
          s.max?.cpuPercent,
          s.sampleCount,
        ]),
        [[0, 20, 10, 30, 2]],
      );
      assert.equal((await ask(base - 2 * 86_400_000)).tier, MetricsTier.MINUTE, "2 days back: past the raw window");
      const hour = await ask(base - 31 * 86_400_000);
      assert.equal(hour.tier, MetricsTier.HOUR, "31 days back: past the minute window");
      assert.deepEqual(
        hour.samples.map((s) => [s.metrics?.cpuPercent, s.min?.cpuPercent, s.max?.cpuPercent, s.sampleCount]),
        [
          [5, 1, 9, 360],
          [20, 10, 30, 2],
        ],
      );
      assert.equal((await ask(base - MINUTE, 3600)).tier, MetricsTier.HOUR, "a one-hour step: the hour tier");
      const unbounded = await owner.agents.listMetrics({ id });
      assert.equal(unbounded.tier, MetricsTier.RAW, "no start time and no step: raw, all of it");
      assert.equal(unbounded.samples.length, 2);

      await expectCode(owner.agents.listMetrics({ id, stepSeconds: 400 * 86400 }), Code.InvalidArgument, /^step_seconds:/);
      await expectCode(
        owner.agents.listMetrics({ id, startTime: timestampFromMs(base), endTime: timestampFromMs(base - 1000) }),
        Code.InvalidArgument,
        /^start_time:/,
      );
    });
  });
}
