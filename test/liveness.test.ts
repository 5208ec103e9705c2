// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { and, arrayContains, eq } from "drizzle-orm";
import { issueAgentToken } from "../core/agents/agent-tokens.js";
import { recordRegistration } from "../core/agents/agents.js";
import { startHeartbeatIngestor } from "../core/agents/heartbeat-ingest.js";
import { sweepLiveness } from "../core/agents/liveness.js";
import { setServerStatus } from "../core/inventory/server-status.js";
import { startSystemOperation } from "../core/operations/operations.js";
import { type DatabaseHandle, openDatabase } from "../db/client.js";
import { agents, auditEvents, ingestionProgress, metricSamplesRaw, outboxEvents, servers } from "../db/schema.js";
import { AgentService } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { postgresLeftOut, testBackends } from "./support/backends.js";
import { ed25519KeyPair } from "./support/keys.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

const TIMEOUT = 40;
const key = ed25519KeyPair();

for (const backend of testBackends()) {
  describe(`agent API and liveness on ${backend}`, () => {
    let pg: TestPostgres | undefined;
    let api: TestApi;
    let owner: ReturnType<TestApi["clients"]>;
    let ownerToken = "";
    let n = 0;

    const agentClient = (token: string) =>
      createClient(
        AgentService,
        createConnectTransport({
          baseUrl: api.baseUrl,
          httpVersion: "1.1",
          interceptors: [
            (next) => (req) => {
              req.header.set("authorization", `Bearer ${token}`);
              return next(req);
            },
          ],
        }),
      );
    const newServer = async (status: "CONFIGURED" | "ONLINE" = "CONFIGURED") => {
      const clusterId = (await owner.clusters.createCluster({ name: `c${++n}` })).cluster!.id;
      const server = (
        await owner.servers.createServer({
          clusterId,
          name: `s${n}`,
          host: `10.77.0.${n}`,
          credential: { method: { case: "privateKey", value: { key: key.privateKey } } },
        })
      ).server!;
      await api.database.db.update(servers).set({ status }).where(eq(servers.id, server.id));
      return { server, token: await issueAgentToken(api.database.db, server.id) };
    };
    const heartbeat = (token: string, serverId: string, cpu = 12.5) =>
      agentClient(token).heartbeat({
        serverId,
        sampleTime: timestampFromDate(new Date()),
        metrics: {
          cpuPercent: cpu,
          memoryUsedBytes: 1_000_000n,
          memoryTotalBytes: 8_000_000n,
          disks: [{ mount: "/", usedBytes: 5n, totalBytes: 10n }],
          load1: 0.5,
          uptimeSeconds: 99n,
        },
      });
    const statusOf = async (id: string) => (await owner.servers.getServer({ id })).server!;
    /** This API's ingestion has been running for an hour: silence before that would not count. */
    const ingestionRanLongEnough = () => api.database.db.update(ingestionProgress).set({ runningSince: new Date(Date.now() - 3600_000) });

    /** Waits until every ingestion instance reporting since `at` (among them `instances`) claims to have caught up past it. */
    const ingestionCaughtUpPast = async (at: number, instances: string[] = []) => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const rows = await api.database.db.select().from(ingestionProgress);
        const reporting = rows.filter((r) => r.updatedAt.getTime() >= at);
        const ids = new Set(reporting.map((r) => r.instanceId));
        if (reporting.length > 0 && instances.every((i) => ids.has(i)) && reporting.every((r) => r.caughtUpTo.getTime() >= at)) return;
        if (Date.now() > deadline) assert.fail(`ingestion did not catch up past the pause: ${JSON.stringify(rows)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    before(async () => {
      if (backend === "postgres") pg = await startPostgres();
      api = await startTestApi({ databaseUrl: pg?.url });
      ownerToken = (await api.newOwner()).token;
      owner = api.clients(ownerToken);
    });
    after(async () => {
      await api?.close();
      await pg?.stop();
    });

    test("an agent registers and heartbeats with its own token; owners read status and metrics", async () => {
      const { server, token } = await newServer();
      const agent = agentClient(token);
      const registered = await agent.register({
        serverId: server.id,
        info: {
          hostname: "web-1",
          os: "Debian GNU/Linux 12",
          arch: "x86_64",
          cpuCount: 2,
          memoryTotalBytes: 8_000_000n,
          agentVersion: "0.1.0",
        },
      });
      assert.equal(registered.heartbeatIntervalSeconds, 10);
      await heartbeat(token, server.id);
      const status = await agentClient(ownerToken).getAgentStatus({ id: server.id });
      const history = await agentClient(ownerToken).listMetrics({ id: server.id });
      assert.equal(history.samples[0]?.metrics?.memoryUsedBytes, 1_000_000n);
      assert.equal(status.installed, true);
      assert.equal(status.info?.hostname, "web-1");
      assert.equal(status.latestMetrics?.cpuPercent, 12.5);
      assert.ok(status.lastHeartbeatTime);
      const [event] = await api.database.db.select().from(outboxEvents).where(eq(outboxEvents.type, "agent.registered"));
      assert.equal(event?.key, server.id);
      const samples = await api.database.db.select().from(metricSamplesRaw).where(eq(metricSamplesRaw.serverId, server.id));
      assert.equal(samples.length, 1);
    });

    test("a token speaks only for its own server; rotation revokes the old token", async () => {
      const a = await newServer();
      const b = await newServer();
      await expectCode(heartbeat(a.token, b.server.id), Code.Unauthenticated);
      await expectCode(heartbeat("axa_forged", a.server.id), Code.Unauthenticated);
      await expectCode(agentClient(ownerToken).register({ serverId: a.server.id }), Code.Unauthenticated, /agent token/);
      await heartbeat(a.token, a.server.id);
      const rotated = await issueAgentToken(api.database.db, a.server.id);
      // The rotation is announced to the API (NOTIFY), which drops its cached hash: no waiting for a cache to expire.
      const deadline = Date.now() + 2000;
      for (;;) {
        const outcome = await heartbeat(a.token, a.server.id).then(
          () => "accepted",
          (error) => error,
        );
        if (outcome !== "accepted") {
          assert.equal(outcome.code, Code.Unauthenticated);
          break;
        }
        assert.ok(Date.now() < deadline, "the old token still works 2 s after rotation");
        await new Promise((r) => setTimeout(r, 50));
      }
      await heartbeat(rotated, a.server.id);
    });

    test("Heartbeat speaks the Connect protocol on every path: JSON over HTTP/1.1, binary, gRPC; errors name the field", async () => {
      const { server, token } = await newServer();
      const post = (body: string, contentType = "application/json") =>
        fetch(`${api.baseUrl}/axion.infrastructure.v1.AgentService/Heartbeat`, {
          method: "POST",
          headers: { "content-type": contentType, authorization: `Bearer ${token}` },
          body,
        });
      const errorOf = async (response: Response) => (await response.json()) as { code: string; message: string };
      const ok = await post(JSON.stringify({ serverId: server.id, metrics: { cpuPercent: 3 } }));
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), {});
      const broken = await post("{not json");
      assert.equal(broken.status, 400);
      assert.equal((await errorOf(broken)).code, "invalid_argument");
      const unknownField = await post(JSON.stringify({ serverId: server.id, metrics: {}, surprise: 1 }));
      assert.equal((await errorOf(unknownField)).code, "invalid_argument");
      const noMetrics = await post(JSON.stringify({ serverId: server.id }));
      assert.equal(noMetrics.status, 400);
      assert.match((await errorOf(noMetrics)).message, /metrics/);
      const badId = await post(JSON.stringify({ serverId: "nope", metrics: {} }));
      assert.match((await errorOf(badId)).message, /server_id/);
      const wrongToken = await fetch(`${api.baseUrl}/axion.infrastructure.v1.AgentService/Heartbeat`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer axa_wrong" },
        body: JSON.stringify({ serverId: server.id, metrics: {} }),
      });
      assert.equal(wrongToken.status, 401);
      assert.equal((await errorOf(wrongToken)).code, "unauthenticated");

      const auth: Interceptor = (next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      };
      const metrics = { cpuPercent: 7 };
      for (const transport of [
        createConnectTransport({ baseUrl: api.baseUrl, httpVersion: "1.1", useBinaryFormat: true, interceptors: [auth] }),
        createGrpcTransport({ baseUrl: api.baseUrl, interceptors: [auth] }),
      ]) {
        await createClient(AgentService, transport).heartbeat({ serverId: server.id, metrics });
        await expectCode(createClient(AgentService, transport).heartbeat({ serverId: server.id }), Code.InvalidArgument, /metrics/);
      }
      const samples = await api.database.db.select().from(metricSamplesRaw).where(eq(metricSamplesRaw.serverId, server.id));
      assert.equal(samples.length, 3);
    });

    test("the sweep turns heard-from servers ONLINE and silent ones OFFLINE, with reason, time and event", async () => {
      const { server, token } = await newServer("CONFIGURED");
      await heartbeat(token, server.id);
      const first = await sweepLiveness(api.database.db, TIMEOUT);
      assert.ok(first.online >= 1);
      assert.equal((await statusOf(server.id)).status, ServerStatus.ONLINE);

      // Silent for longer than the timeout, while ingestion is caught up.
      await api.database.db
        .update(agents)
        .set({ lastHeartbeatAt: new Date(Date.now() - (TIMEOUT + 5) * 1000) })
        .where(eq(agents.serverId, server.id));
      await new Promise((r) => setTimeout(r, 1200)); // an idle flush records progress
      await ingestionRanLongEnough();
      const second = await sweepLiveness(api.database.db, TIMEOUT);
      assert.ok(second.offlineIds.includes(server.id));
      const offline = await statusOf(server.id);
      assert.equal(offline.status, ServerStatus.OFFLINE);
      assert.match(offline.statusReason, /no heartbeat for more than 40 s/);
      const audited = await api.database.db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.action, "server.marked_offline"), arrayContains(auditEvents.targetIds, [server.id])));
      assert.deepEqual(
        audited.map((e) => [e.actorKind, e.actorName, e.outcome]),
        [["system", "monitor", "ok"]],
        "the monitor's change is on record",
      );
      const events = await api.database.db.select().from(outboxEvents).where(eq(outboxEvents.key, server.id));
      assert.deepEqual(
        events.filter((e) => e.type === "server.status_changed").map((e) => [e.payload.from, e.payload.to]),
        [
          ["CONFIGURED", "ONLINE"],
          ["ONLINE", "OFFLINE"],
        ],
      );

      await heartbeat(token, server.id);
      await sweepLiveness(api.database.db, TIMEOUT);
      assert.equal((await statusOf(server.id)).status, ServerStatus.ONLINE, "back ONLINE when heartbeats resume");
    });

    test("an agent that registers after a failed install brings the ERROR server ONLINE; one registered before the failure does not", async () => {
      const late = await newServer("CONFIGURED");
      await api.database.db
        .update(servers)
        .set({ status: "ERROR", statusReason: "install_agent: the agent did not register", statusChangedAt: new Date(Date.now() - 60_000) })
        .where(eq(servers.id, late.server.id));
      await recordRegistration(api.database.db, late.server.id, {});
      await heartbeat(late.token, late.server.id);

      const failedLater = await newServer("CONFIGURED");
      await recordRegistration(api.database.db, failedLater.server.id, {});
      await new Promise((r) => setTimeout(r, 20));
      await setServerStatus(api.database.db, failedLater.server.id, "ERROR", "recovery: disk still full", {
        by: "operation",
        kind: "recovery",
        operationId: (await startSystemOperation(api.database.db, failedLater.server.id, "recovery", "fleet_check")).id,
      });
      await heartbeat(failedLater.token, failedLater.server.id);

      await sweepLiveness(api.database.db, TIMEOUT);
      assert.equal((await statusOf(late.server.id)).status, ServerStatus.ONLINE, "the late agent proves the install worked");
      assert.equal((await statusOf(failedLater.server.id)).status, ServerStatus.ERROR, "heartbeats say nothing about the disk");
    });

    test("stalled ingestion never produces a false OFFLINE", async () => {
      const { server, token } = await newServer("CONFIGURED");
      await heartbeat(token, server.id);
      await sweepLiveness(api.database.db, TIMEOUT);
      assert.equal((await statusOf(server.id)).status, ServerStatus.ONLINE);
      // The last heartbeat is old by the wall clock, but another API instance's ingestion is stuck just after it
      // (a paused database, a backlog): what it holds may include this server's newer heartbeats.
      const lastHeard = new Date(Date.now() - 120_000);
      await api.database.db.update(agents).set({ lastHeartbeatAt: lastHeard }).where(eq(agents.serverId, server.id));
      await api.database.db
        .insert(ingestionProgress)
        .values({ instanceId: "stuck-instance", caughtUpTo: new Date(lastHeard.getTime() + 1000), updatedAt: new Date() });
      await ingestionRanLongEnough();
      const stalled = await sweepLiveness(api.database.db, TIMEOUT);
      assert.ok(!stalled.offlineIds.includes(server.id));
      assert.equal((await statusOf(server.id)).status, ServerStatus.ONLINE);
      // Once that instance has caught up, the silence counts.
      await api.database.db
        .update(ingestionProgress)
        .set({ caughtUpTo: new Date() })
        .where(eq(ingestionProgress.instanceId, "stuck-instance"));
      assert.ok((await sweepLiveness(api.database.db, TIMEOUT)).offlineIds.includes(server.id));
      await api.database.db.delete(ingestionProgress).where(eq(ingestionProgress.instanceId, "stuck-instance"));
    });

    test("the progress row of an API instance declared dead no longer holds liveness back", async () => {
      const { server, token } = await newServer("CONFIGURED");
      await heartbeat(token, server.id);
      await sweepLiveness(api.database.db, TIMEOUT);
      await api.database.db
        .update(agents)
        .set({ lastHeartbeatAt: new Date(Date.now() - (TIMEOUT + 5) * 1000) })
        .where(eq(agents.serverId, server.id));
      // An instance that stopped three timeouts ago, far behind, and is declared dead after two: what it held is lost.
      const gone = new Date(Date.now() - 3 * TIMEOUT * 1000);
      await api.database.db
        .insert(ingestionProgress)
        .values({ instanceId: "gone-instance", caughtUpTo: new Date(gone.getTime() - 600_000), updatedAt: gone, runningSince: gone });
      await ingestionRanLongEnough();
      const held = await sweepLiveness(api.database.db, TIMEOUT);
      assert.ok(!held.offlineIds.includes(server.id), "not yet declared dead (the default: 300 s)");
      assert.deepEqual(
        held.heldBy.map((h) => h.instanceId),
        ["gone-instance"],
      );
      assert.ok((await sweepLiveness(api.database.db, TIMEOUT, { instanceDeadAfterSeconds: 2 * TIMEOUT })).offlineIds.includes(server.id));
      await api.database.db.delete(ingestionProgress).where(eq(ingestionProgress.instanceId, "gone-instance"));
    });

    test("a heartbeat taken in while the database is paused counts as heard when it is written, not when it came in", {
      skip: backend !== "postgres",
    }, async () => {
      const { server, token } = await newServer("CONFIGURED");
      await heartbeat(token, server.id);
      await sweepLiveness(api.database.db, 5);
      assert.equal((await statusOf(server.id)).status, ServerStatus.ONLINE);
      const ingestor = startHeartbeatIngestor(api.database.db, { instanceId: "paused-write" });
      try {
        pg!.pause();
        const written = ingestor.submit({ serverId: server.id, metrics: { cpuPercent: 3 } });
        await new Promise((r) => setTimeout(r, 7000)); // longer than the 5 s timeout
        pg!.resume();
        const resumedAt = Date.now();
        await written;
        const [agent] = await api.database.db
          .select({ heardAt: agents.lastHeartbeatAt })
          .from(agents)
          .where(eq(agents.serverId, server.id));
        assert.ok(
          agent!.heardAt!.getTime() >= resumedAt - 50,
          `heard at ${agent?.heardAt?.toISOString()}, resumed at ${new Date(resumedAt).toISOString()}`,
        );
        // Once both ingestion instances claim to have caught up past the pause, the agent was silent only while it waited.
        await ingestionCaughtUpPast(resumedAt, ["paused-write"]);
        const swept = await sweepLiveness(api.database.db, 5);
        assert.ok(!swept.offlineIds.includes(server.id), "not OFFLINE once the waiting heartbeat is written");
      } finally {
        pg!.resume();
        await ingestor.stop();
        await api.database.db.delete(ingestionProgress).where(eq(ingestionProgress.instanceId, "paused-write"));
      }
    });

    test("a paused database does not flip healthy servers OFFLINE", { skip: backend !== "postgres" }, async () => {
      const { server, token } = await newServer("CONFIGURED");
      await heartbeat(token, server.id);
      await sweepLiveness(api.database.db, 5);
      assert.equal((await statusOf(server.id)).status, ServerStatus.ONLINE);
      // An agent keeps sending a heartbeat every second throughout.
      let running = true;
      const agent = (async () => {
        while (running) {
          await heartbeat(token, server.id).catch(() => undefined);
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      try {
        pg!.pause();
        await new Promise((r) => setTimeout(r, 8000)); // longer than the 5 s timeout
        pg!.resume();
        const resumedAt = Date.now();
        // The sweep that matters runs once ingestion has written what it held during the pause: it then claims to have
        // caught up past the pause, while the agent, waiting for that heartbeat's answer, sent nothing else meanwhile.
        await ingestionCaughtUpPast(resumedAt);
        const afterPause = await sweepLiveness(api.database.db, 5);
        assert.ok(!afterPause.offlineIds.includes(server.id), "not OFFLINE right after the database comes back");
        await new Promise((r) => setTimeout(r, 2000));
        const later = await sweepLiveness(api.database.db, 5);
        assert.ok(!later.offlineIds.includes(server.id));
      } finally {
        pg!.resume();
        running = false;
        await agent;
      }
      assert.equal((await statusOf(server.id)).status, ServerStatus.ONLINE);
    });
  });
}

describe("liveness counts only the silence it could have heard", { skip: postgresLeftOut() }, () => {
  const T = 5;
  let pg: TestPostgres;
  let worker: DatabaseHandle;
  before(async () => {
    pg = await startPostgres();
    worker = await openDatabase({ databaseUrl: pg.url, dataDir: "memory://" });
    await worker.migrate();
  });
  after(async () => {
    await worker?.close();
    await pg?.stop();
  });

  test("the API stopped for longer than the timeout and restarted: no healthy server goes OFFLINE; a silent one still does", async () => {
    let api = await startTestApi({ databaseUrl: pg.url });
    const owner = api.clients((await api.newOwner()).token);
    const clusterId = (await owner.clusters.createCluster({ name: "outage" })).cluster!.id;
    const fleet: { id: string; token: string }[] = [];
    for (let i = 0; i < 13; i++) {
      const server = (
        await owner.servers.createServer({
          clusterId,
          name: `o${i}`,
          host: `10.78.0.${i + 1}`,
          credential: { method: { case: "privateKey", value: { key: key.privateKey } } },
        })
      ).server!;
      await worker.db.update(servers).set({ status: "CONFIGURED" }).where(eq(servers.id, server.id));
      fleet.push({ id: server.id, token: await issueAgentToken(worker.db, server.id) });
    }
    const healthy = fleet.slice(0, 12);
    const silent = fleet[12]!;
    // Agents heartbeat every second while `sending` (the 13th stops for good at the outage); a stopped API refuses them.
    let sending = new Set(fleet.map((s) => s.id));
    let running = true;
    const agents = (async () => {
      while (running) {
        const target = api;
        await Promise.all(
          fleet
            .filter((s) => sending.has(s.id))
            .map((s) =>
              fetch(`${target.baseUrl}/axion.infrastructure.v1.AgentService/Heartbeat`, {
                method: "POST",
                headers: { "content-type": "application/json", authorization: `Bearer ${s.token}` },
                body: JSON.stringify({ serverId: s.id, metrics: { cpuPercent: 1 } }),
              }).catch(() => undefined),
            ),
        );
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    const statuses = async () =>
      new Map((await worker.db.select({ id: servers.id, status: servers.status }).from(servers)).map((r) => [r.id, r.status]));
    try {
      // Ingestion has run for longer than the timeout: the sweep acts on what it heard.
      await new Promise((r) => setTimeout(r, (T + 1) * 1000));
      await sweepLiveness(worker.db, T);
      assert.ok([...(await statuses()).values()].every((s) => s === "ONLINE"));

      // The service stops for more than two timeouts; the agents back off and come back 3 s after it is up again.
      sending = new Set();
      await api.close();
      await new Promise((r) => setTimeout(r, (2 * T + 2) * 1000));
      api = await startTestApi({ databaseUrl: pg.url });
      const restartedAt = Date.now();
      const wentOffline = new Set<string>();
      let resumed = false;
      while (Date.now() - restartedAt < (T + 3) * 1000) {
        if (!resumed && Date.now() - restartedAt > 3000) {
          sending = new Set(healthy.map((s) => s.id));
          resumed = true;
        }
        for (const id of (await sweepLiveness(worker.db, T)).offlineIds) wentOffline.add(id);
        await new Promise((r) => setTimeout(r, 250));
      }
      for (const s of healthy) assert.ok(!wentOffline.has(s.id), "a healthy server went OFFLINE after the restart");
      // The really silent server: OFFLINE once the timeout has passed while ingestion ran.
      const deadline = Date.now() + 5000;
      while (!wentOffline.has(silent.id) && Date.now() < deadline) {
        for (const id of (await sweepLiveness(worker.db, T)).offlineIds) wentOffline.add(id);
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(wentOffline.has(silent.id), "the silent server went OFFLINE");
      const after = await statuses();
      assert.equal(after.get(silent.id), "OFFLINE");
      for (const s of healthy) assert.equal(after.get(s.id), "ONLINE");
    } finally {
      running = false;
      await agents;
      await api.close();
    }
  });
});
