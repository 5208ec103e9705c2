// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import { pruneAuditEvents } from "../core/audit/retention.js";
import { AgentService } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { AuditActorKind, AuditService } from "../gen/axion/infrastructure/v1/audit_service_pb.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { NotificationChannelKind, NotificationService } from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { TokenService } from "../gen/axion/infrastructure/v1/token_service_pb.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { testBackends } from "./support/backends.js";
import { ed25519KeyPair } from "./support/keys.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

const UPDATE_CLUSTER = "axion.infrastructure.v1.ClusterService/UpdateCluster";
const CREATE_CLUSTER = "axion.infrastructure.v1.ClusterService/CreateCluster";
const CHANNEL_SECRET = "s3cret-webhook-signing-key-never-shown";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const rowsOf = <T>(result: unknown): T[] => (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];

for (const backend of testBackends()) {
  describe(`audit trail on ${backend}`, () => {
    let pg: TestPostgres | undefined;
    let api: TestApi;

    before(async () => {
      if (backend === "postgres") pg = await startPostgres();
      api = await startTestApi({ databaseUrl: pg?.url });
    });
    after(async () => {
      await api?.close();
      await pg?.stop();
    });

    /** Clients with a token (or none), a user agent and, when given, a request id. */
    const clients = (token: string | undefined, requestId?: string) => {
      const headers: Interceptor = (next) => (req) => {
        if (token) req.header.set("authorization", `Bearer ${token}`);
        req.header.set("user-agent", "audit-test/1.0 \u0085next");
        if (requestId) req.header.set("x-request-id", requestId);
        return next(req);
      };
      const transport = createConnectTransport({ baseUrl: api.baseUrl, httpVersion: "1.1", interceptors: [headers] });
      return {
        clusters: createClient(ClusterService, transport),
        servers: createClient(ServerService, transport),
        notifications: createClient(NotificationService, transport),
        tokens: createClient(TokenService, transport),
        audit: createClient(AuditService, transport),
        agents: createClient(AgentService, transport),
      };
    };
    const allEvents = async (token: string, installation = false) =>
      (await clients(token).audit.listAuditEvents({ pageSize: 500, installation })).events;
    const exec = async <T>(statement: ReturnType<typeof sql>) => rowsOf<T>(await api.database.db.execute(statement));

    test("mutating calls, accepted and refused, are recorded with who, what, from where and the outcome; reads are not; no secret", async () => {
      const { token } = await api.newOwner();
      const alice = clients(token, "req-audit-1");
      const tokenId = (await alice.tokens.listTokens({})).tokens.find((t) => t.current)!.id;
      const cluster = (await alice.clusters.createCluster({ name: "prod", description: "free text never recorded" })).cluster!;
      await alice.clusters.updateCluster({ id: cluster.id, description: "changed" });
      await expectCode(alice.clusters.updateCluster({ id: "nope", description: "x" }), Code.InvalidArgument, /id/);
      const key = ed25519KeyPair();
      const server = (
        await alice.servers.createServer({
          clusterId: cluster.id,
          name: "web-1",
          host: "203.0.113.10",
          credential: { method: { case: "privateKey", value: { key: key.privateKey } } },
        })
      ).server!;
      await alice.notifications
        .createNotificationChannel({
          name: "ops",
          kind: NotificationChannelKind.WEBHOOK,
          url: "http://203.0.113.10/hook",
          secret: CHANNEL_SECRET,
        })
        .catch(() => undefined); // accepted or refused by the network policy, it is recorded either way
      await alice.clusters.listClusters({});
      await alice.clusters.getCluster({ id: cluster.id });
      await alice.servers.getServer({ id: server.id });

      const events = await allEvents(token);
      assert.deepEqual(
        events.map((e) => [e.action.split("/")[1], e.outcome]),
        [
          ["CreateCluster", "ok"],
          ["UpdateCluster", "ok"],
          ["UpdateCluster", "invalid_argument"],
          ["CreateServer", "ok"],
          ["CreateNotificationChannel", events[4]?.outcome],
        ],
        "the changes in order, refused ones included; no read (List/Get) is recorded",
      );
      assert.deepEqual(
        events.map((e) => e.seq),
        [1n, 2n, 3n, 4n, 5n],
      );
      const [created, updated, refused, serverCreated] = events;
      assert.equal(created!.action, CREATE_CLUSTER);
      assert.deepEqual(created!.targetIds, [], "a create names no id");
      assert.equal(updated!.action, UPDATE_CLUSTER);
      assert.deepEqual(updated!.targetIds, [cluster.id]);
      assert.deepEqual(refused!.targetIds, ["nope"]);
      assert.deepEqual(serverCreated!.targetIds, [cluster.id], "cluster_id, never the key or the host");
      for (const e of events) {
        assert.equal(e.actor!.kind, AuditActorKind.TOKEN);
        assert.equal(e.actor!.id, tokenId, "the token that made the call");
        assert.equal(e.clientAddress, "127.0.0.1");
        assert.equal(e.userAgent, "audit-test/1.0 \u00c2\\u0085next", "escaped (the header arrives as Latin-1)");
        assert.equal(e.requestId, "req-audit-1");
        assert.match(e.hash, /^[0-9a-f]{64}$/);
      }

      const stored = JSON.stringify(await exec(sql`select * from audit_events`));
      const published = JSON.stringify(await exec(sql`select payload from outbox_events where type = 'audit.recorded'`));
      assert.ok(published.includes(cluster.id), "audit.recorded events are in the outbox");
      for (const text of [stored, published]) {
        for (const secret of [key.privateKey.split("\n")[1]!, CHANNEL_SECRET, token, "free text never recorded", "changed"]) {
          assert.ok(!text.includes(secret), `no secret or free text in the audit rows or events: ${secret.slice(0, 12)}`);
        }
      }
    });

    test("a caller refused before naming an organization is recorded as anonymous with its address; registrations are, heartbeats are not", async () => {
      const admin = await api.newOwner("admin").catch(async () => api.newOwner());
      const stranger = clients(undefined, "req-anon-1");
      await expectCode(stranger.clusters.updateCluster({ id: "0190aaaa-0000-7000-8000-000000000000" }), Code.Unauthenticated);
      await expectCode(clients("axn_not-a-real-token").clusters.deleteCluster({ id: "x" }), Code.Unauthenticated);
      await expectCode(stranger.clusters.listClusters({}), Code.Unauthenticated);
      await expectCode(stranger.agents.register({ serverId: "0190aaaa-0000-7000-8000-000000000001" }), Code.Unauthenticated);
      await expectCode(stranger.agents.heartbeat({ serverId: "0190aaaa-0000-7000-8000-000000000001" }), Code.Unauthenticated);

      const events = await allEvents(admin.token, true);
      assert.deepEqual(
        events.map((e) => [e.action.split("/")[1], e.actor!.kind, e.outcome]),
        [
          ["UpdateCluster", AuditActorKind.ANONYMOUS, "unauthenticated"],
          ["DeleteCluster", AuditActorKind.ANONYMOUS, "unauthenticated"],
          ["Register", AuditActorKind.AGENT, "unauthenticated"],
        ],
        "no read and no heartbeat is recorded",
      );
      assert.equal(events[0]!.actor!.id, "127.0.0.1");
      assert.equal(events[0]!.clientAddress, "127.0.0.1");
      assert.equal(events[0]!.requestId, "req-anon-1");
      assert.deepEqual(events[2]!.targetIds, ["0190aaaa-0000-7000-8000-000000000001"]);

      const other = await api.newOwner();
      await expectCode(clients(other.token).audit.listAuditEvents({ installation: true }), Code.InvalidArgument, /installation/);
    });

    test("verify passes, then names the sequence of a changed, an inserted and a removed entry", async () => {
      const { token, ownerId } = await api.newOwner();
      const bob = clients(token);
      const cluster = (await bob.clusters.createCluster({ name: "c" })).cluster!;
      // Appends to one chain made at once serialise on its head: no sequence twice, none skipped.
      await Promise.all(Array.from({ length: 8 }, (_, i) => bob.clusters.updateCluster({ id: cluster.id, description: `d${i}` })));
      const intact = await bob.audit.verifyAuditTrail({});
      assert.equal(intact.intact, true);
      assert.equal(intact.checked, 9n);
      assert.equal(intact.lastSeq, 9n);

      await exec(
        sql`update audit_events set target_ids = array['0190bbbb-0000-7000-8000-000000000000'] where owner_id = ${ownerId} and seq = 4`,
      );
      let verdict = await bob.audit.verifyAuditTrail({});
      assert.deepEqual([verdict.intact, verdict.brokenSeq, verdict.problem], [false, 4n, "changed"]);
      await exec(sql`update audit_events set target_ids = array[${cluster.id}] where owner_id = ${ownerId} and seq = 4`);
      assert.equal((await bob.audit.verifyAuditTrail({})).intact, true, "put back as it was");

      await exec(sql`insert into audit_events select owner_id, 10, gen_random_uuid(), at, actor_kind, actor_id, actor_name, action,
        target_ids, client_address, user_agent, request_id, trace_id, detail, outcome, hash from audit_events where owner_id = ${ownerId} and seq = 9`);
      verdict = await bob.audit.verifyAuditTrail({});
      assert.deepEqual([verdict.intact, verdict.brokenSeq, verdict.problem], [false, 10n, "inserted"]);
      await exec(sql`delete from audit_events where owner_id = ${ownerId} and seq = 10`);

      await exec(sql`delete from audit_events where owner_id = ${ownerId} and seq = 6`);
      verdict = await bob.audit.verifyAuditTrail({});
      assert.deepEqual([verdict.intact, verdict.brokenSeq, verdict.problem], [false, 6n, "missing"]);
    });

    test("retention removes the oldest entries, keeps a checkpoint, and verify still passes from it", async () => {
      const { token, ownerId } = await api.newOwner();
      const carol = clients(token);
      const cluster = (await carol.clusters.createCluster({ name: "c" })).cluster!;
      await carol.clusters.updateCluster({ id: cluster.id, description: "a" });
      await carol.clusters.updateCluster({ id: cluster.id, description: "b" });
      await sleep(5);
      const cut = new Date();
      await sleep(5);
      await carol.clusters.updateCluster({ id: cluster.id, description: "c" });
      await carol.clusters.updateCluster({ id: cluster.id, description: "d" });
      const third = (await allEvents(token))[2]!;

      assert.ok((await pruneAuditEvents(api.database.db, cut)) >= 3);
      assert.deepEqual(
        (await allEvents(token)).map((e) => e.seq),
        [4n, 5n],
      );
      const kept = await carol.audit.verifyAuditTrail({});
      assert.deepEqual([kept.intact, kept.checkpointSeq, kept.checked], [true, 3n, 2n]);
      const [checkpoint] = await exec<{ checkpoint_hash: string }>(
        sql`select checkpoint_hash from audit_chains where owner_id = ${ownerId}`,
      );
      assert.equal(checkpoint!.checkpoint_hash, third.hash, "the checkpoint is the last removed entry's hash");

      await exec(sql`delete from audit_events where owner_id = ${ownerId} and seq = 4`);
      const verdict = await carol.audit.verifyAuditTrail({});
      assert.deepEqual([verdict.intact, verdict.brokenSeq, verdict.problem], [false, 4n, "missing"]);
    });
  });
}
