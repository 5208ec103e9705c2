// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, mock, test } from "node:test";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { eq, sql } from "drizzle-orm";
import { createAgentActivities } from "../activities/agent.js";
import { issueAgentToken } from "../core/agents/agent-tokens.js";
import { AppError } from "../core/kernel/errors.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { agents, ingestionProgress, metricSamplesRaw, servers } from "../db/schema.js";
import { AgentService } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { startTestApi, type TestApi, testCredentialsKey } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { testBackends } from "./support/backends.js";
import { ed25519KeyPair } from "./support/keys.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

/** Whatever one agent sends, it cannot fail another agent's heartbeats, and bad fields are refused by name. */
const key = ed25519KeyPair();
const HEARTBEAT_URL = "/axion.infrastructure.v1.AgentService/Heartbeat";

for (const backend of testBackends()) {
  describe(`heartbeat intake on ${backend}`, () => {
    let pg: TestPostgres | undefined;
    let api: TestApi;
    let owner: ReturnType<TestApi["clients"]>;
    let n = 0;

    const auth =
      (token: string): Interceptor =>
      (next) =>
      (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      };
    const agentClient = (token: string, binary = false) =>
      createClient(
        AgentService,
        createConnectTransport({ baseUrl: api.baseUrl, httpVersion: "1.1", useBinaryFormat: binary, interceptors: [auth(token)] }),
      );
    const newAgent = async () => {
      const i = ++n;
      const clusterId = (await owner.clusters.createCluster({ name: `i${i}` })).cluster!.id;
      const server = (
        await owner.servers.createServer({
          clusterId,
          name: `i${i}`,
          host: `10.78.${i >> 8}.${i & 255}`,
          credential: { method: { case: "privateKey", value: { key: key.privateKey } } },
        })
      ).server!;
      return { id: server.id, token: await issueAgentToken(api.database.db, server.id) };
    };
    const metrics = (mount = "/") => ({
      cpuPercent: 10,
      memoryUsedBytes: "1000",
      memoryTotalBytes: "8000",
      disks: [{ mount, usedBytes: "5", totalBytes: "10" }],
    });
    /** The agents' own request shape (JSON over HTTP/1.1): the fast path. */
    const post = (agent: { id: string; token: string }, body: unknown) =>
      fetch(`${api.baseUrl}${HEARTBEAT_URL}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${agent.token}` },
        body: JSON.stringify(body),
      });
    const samplesOf = async (id: string) => api.database.db.select().from(metricSamplesRaw).where(eq(metricSamplesRaw.serverId, id));

    before(async () => {
      if (backend === "postgres") pg = await startPostgres();
      api = await startTestApi({ databaseUrl: pg?.url });
      owner = api.clients((await api.newOwner()).token);
    });
    after(async () => {
      await api?.close();
      await pg?.stop();
    });

    test("a NUL in one agent's disk mount is refused by name; every other agent's heartbeat sent with it is stored", async () => {
      const fleet = await Promise.all(Array.from({ length: 12 }, newAgent));
      const [bad, ...good] = fleet as [{ id: string; token: string }, ...{ id: string; token: string }[]];
      for (let round = 0; round < 3; round++) {
        const [badAnswer, ...goodAnswers] = await Promise.all([
          post(bad, { serverId: bad.id, sampleTime: new Date().toISOString(), metrics: metrics("/data\u0000") }),
          ...good.map((g) => post(g, { serverId: g.id, sampleTime: new Date().toISOString(), metrics: metrics() })),
        ]);
        assert.equal(badAnswer!.status, 400);
        const error = (await badAnswer!.json()) as { code: string; message: string };
        assert.equal(error.code, "invalid_argument");
        assert.match(error.message, /metrics\.disks\[0\]\.mount/);
        assert.deepEqual(
          goodAnswers.map((a) => a.status),
          good.map(() => 200),
        );
      }
      // The same through the Connect router (binary protobuf).
      await Promise.all([
        expectCode(
          agentClient(bad.token, true).heartbeat({ serverId: bad.id, metrics: { disks: [{ mount: "\u0000" }] } }),
          Code.InvalidArgument,
          /metrics\.disks\[0\]\.mount/,
        ),
        ...good.map((g) => agentClient(g.token, true).heartbeat({ serverId: g.id, metrics: { cpuPercent: 1 } })),
      ]);
      for (const g of good) assert.equal((await samplesOf(g.id)).length, 4);
      assert.equal((await samplesOf(bad.id)).length, 0, "nothing of the bad heartbeat is written");
    });

    test("a far-future sample_time is replaced by the database's time and fails nobody else's heartbeat", async () => {
      const [odd, other] = [await newAgent(), await newAgent()];
      const before = Date.now();
      await Promise.all([
        agentClient(odd.token, true).heartbeat({
          serverId: odd.id,
          sampleTime: { seconds: 10n ** 15n, nanos: 0 },
          metrics: { cpuPercent: 3 },
        }),
        agentClient(other.token, true).heartbeat({ serverId: other.id, sampleTime: timestampFromDate(new Date()), metrics: {} }),
        post(odd, { serverId: odd.id, sampleTime: "9999-12-31T23:59:59Z", metrics: metrics() }).then((r) => assert.equal(r.status, 200)),
      ]);
      const samples = await samplesOf(odd.id);
      assert.equal(samples.length, 2);
      for (const s of samples) assert.ok(Math.abs(s.sampledAt.getTime() - before) < 60_000, `sampled_at ${s.sampledAt.toISOString()}`);
      assert.equal((await samplesOf(other.id)).length, 1);
    });

    test("every field is bounded: mounts, their count, numbers; errors name the field and nothing is written", async () => {
      const agent = await newAgent();
      const cases: [unknown, RegExp][] = [
        [{ ...metrics("x".repeat(5000)) }, /metrics\.disks\[0\]\.mount/],
        [{ ...metrics("/\ud800") }, /mount/],
        [{ ...metrics("/a\tb") }, /metrics\.disks\[0\]\.mount/],
        [{ disks: Array.from({ length: 257 }, (_, i) => ({ mount: `/m${i}` })) }, /metrics\.disks\b/],
        [{ cpuPercent: "NaN" }, /metrics\.cpu_percent/],
        [{ cpuPercent: 1e9 }, /metrics\.cpu_percent/],
        [{ load1: "Infinity" }, /metrics\.load1/],
        [{ load5: -1 }, /metrics\.load5/],
        [{ memoryTotalBytes: "18446744073709551615" }, /metrics\.memory_total_bytes/],
      ];
      for (const [body, field] of cases) {
        const answer = await post(agent, { serverId: agent.id, metrics: body });
        const error = (await answer.json()) as { code: string; message: string };
        assert.equal(error.code, "invalid_argument", JSON.stringify(body).slice(0, 80));
        assert.match(error.message, field);
      }
      assert.equal((await samplesOf(agent.id)).length, 0);
    });

    test("a batch write that still fails is split: every good heartbeat is written, only the bad one fails, progress advances", async () => {
      const fleet = await Promise.all(Array.from({ length: 9 }, newAgent));
      const [progressBefore] = await api.database.db.select().from(ingestionProgress);
      // Something the intake did not foresee (here: a uint64 byte count beyond the raw tier's bigint, which only the batch statement refuses).
      const outcomes = await Promise.allSettled(
        fleet.map((a, i) =>
          api.ingestor.submit({
            serverId: a.id,
            sampledAt: new Date(),
            metrics: i === 4 ? { memoryUsedBytes: "18446744073709551615" } : { cpuPercent: 1 },
          }),
        ),
      );
      assert.deepEqual(
        outcomes.map((o) => o.status),
        fleet.map((_, i) => (i === 4 ? "rejected" : "fulfilled")),
      );
      const failure = (outcomes[4] as PromiseRejectedResult).reason;
      assert.ok(failure instanceof AppError && failure.kind === "invalid_argument", String(failure));
      for (const [i, a] of fleet.entries()) assert.equal((await samplesOf(a.id)).length, i === 4 ? 0 : 1);
      await new Promise((r) => setTimeout(r, 1200));
      const [progressAfter] = await api.database.db.select().from(ingestionProgress);
      assert.ok(progressAfter!.caughtUpTo > progressBefore!.caughtUpTo, "ingestion progress keeps advancing");
    });

    test("Register fields are bounded and clean: a NUL or a 70,000-character hostname is InvalidArgument and not stored", async () => {
      const agent = await newAgent();
      const client = agentClient(agent.token);
      await expectCode(client.register({ serverId: agent.id, info: { hostname: "web\u00001" } }), Code.InvalidArgument, /info\.hostname/);
      await expectCode(
        client.register({ serverId: agent.id, info: { hostname: "h".repeat(60_000) } }),
        Code.InvalidArgument,
        /info\.hostname/,
      );
      // Past the agents' 64 KiB body limit the body is not even read.
      await expectCode(
        client.register({ serverId: agent.id, info: { hostname: "h".repeat(70_000) } }),
        Code.ResourceExhausted,
        /readMaxBytes/,
      );
      await expectCode(client.register({ serverId: agent.id, info: { os: "Debian\n12" } }), Code.InvalidArgument, /info\.os/);
      await expectCode(
        client.register({ serverId: agent.id, info: { agentVersion: "v".repeat(65) } }),
        Code.InvalidArgument,
        /info\.agent_version/,
      );
      const [row] = await api.database.db.select().from(agents).where(eq(agents.serverId, agent.id));
      assert.equal(row?.registeredAt, null);
      assert.equal(row?.info, null);
      await client.register({ serverId: agent.id, info: { hostname: "web-1", os: "Debian GNU/Linux 12" } });
    });

    test("an agent sending faster than its rate limit is refused with ResourceExhausted and the excess is not stored", async () => {
      const agent = await newAgent();
      const answers: number[] = [];
      for (let i = 0; i < 14; i++) answers.push((await post(agent, { serverId: agent.id, metrics: metrics() })).status);
      const accepted = answers.filter((s) => s === 200).length;
      assert.ok(accepted >= 10 && accepted < 14, `accepted ${accepted} of 14 at once`);
      assert.ok(
        answers.slice(accepted).every((s) => s === 429),
        `answers ${answers.join(",")}`,
      );
      assert.equal((await samplesOf(agent.id)).length, accepted);
      const other = await newAgent();
      assert.equal((await post(other, { serverId: other.id, metrics: metrics() })).status, 200, "other agents are not limited by it");
    });

    test("a reinstall's token is pending: both work until the new one is first used, which revokes the old one at once", async () => {
      const agent = await newAgent();
      const cipher = createCredentialsCipher(testCredentialsKey);
      const pending = await issueAgentToken(api.database.db, agent.id, { cipher, pending: true });
      await new Promise((r) => setTimeout(r, 200)); // the change notification reaches the API
      assert.equal((await post(agent, { serverId: agent.id, metrics: metrics() })).status, 200, "the running agent keeps working");
      // A second reinstall that also fails replaces the pending token; the running agent is still fine.
      const pendingAgain = await issueAgentToken(api.database.db, agent.id, { cipher, pending: true });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await post({ ...agent, token: pending }, { serverId: agent.id, metrics: metrics() })).status, 401);
      assert.equal((await post(agent, { serverId: agent.id, metrics: metrics() })).status, 200);
      await agentClient(pendingAgain).register({ serverId: agent.id, info: { hostname: "reinstalled" } });
      assert.equal((await post(agent, { serverId: agent.id, metrics: metrics() })).status, 401, "the old token is revoked");
      assert.equal((await post({ ...agent, token: pendingAgain }, { serverId: agent.id, metrics: metrics() })).status, 200);
      const [row] = await api.database.db.select().from(agents).where(eq(agents.serverId, agent.id));
      assert.equal(row?.pendingTokenHash, null);
    });

    // PGlite runs inside this process and reads its clock: only a database of its own has a clock of its own.
    test("registration is compared with the database's clock: an API whose clock is behind still completes the install wait", {
      skip: backend !== "postgres",
    }, async () => {
      const agent = await newAgent();
      const activities = createAgentActivities({
        db: api.database.db,
        cipher: createCredentialsCipher(testCredentialsKey),
        adminUser: "axion",
        sshConnectTimeoutMs: 1000,
      });
      // The install step marks its start (the database's clock, which this machine shares).
      const result = await api.database.db.execute(sql`select now() as now`);
      const rows = (Array.isArray(result) ? result : (result as { rows: { now: Date | string }[] }).rows) as { now: Date | string }[];
      const since = new Date(rows[0]!.now).toISOString();
      await new Promise((r) => setTimeout(r, 20));
      // The API process registering the agent runs 30 s behind.
      mock.timers.enable({ apis: ["Date"], now: Date.now() - 30_000 });
      try {
        await agentClient(agent.token).register({ serverId: agent.id, info: { hostname: "skewed" } });
      } finally {
        mock.timers.reset();
      }
      assert.equal(await activities.agentRegisteredSince({ serverId: agent.id, since }), true);
      await api.database.db.update(servers).set({ status: "CONFIGURED" }).where(eq(servers.id, agent.id));
    });
  });
}
