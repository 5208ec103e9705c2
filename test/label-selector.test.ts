// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { count, eq, inArray } from "drizzle-orm";
import { selectTargetServers } from "../core/inventory/server-selection.js";
import { servers } from "../db/schema.js";
import { ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { testBackends } from "./support/backends.js";
import { ed25519KeyPair } from "./support/keys.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

const key = ed25519KeyPair();

/** name → labels, cluster ("a" or "b"). */
const fleet: Record<string, { labels: Record<string, string>; cluster: "a" | "b" }> = {
  "web-1": { labels: { role: "web", env: "prod", tier: "a" }, cluster: "a" },
  "web-2": { labels: { role: "web", env: "dev" }, cluster: "a" },
  "db-1": { labels: { role: "db", env: "prod", tier: "b", legacy: "" }, cluster: "b" },
  "bare-1": { labels: {}, cluster: "b" },
  "cache-1": { labels: { role: "cache", "example.com/zone": "eu-1" }, cluster: "a" },
};
const everyName = Object.keys(fleet).sort();

for (const backend of testBackends()) {
  describe(`label selectors and ListServers filters on ${backend}`, () => {
    let pg: TestPostgres | undefined;
    let api: TestApi;
    let alice: ReturnType<TestApi["clients"]>;
    let aliceId: string;
    const clusterIds: Record<"a" | "b", string> = { a: "", b: "" };
    let hostCounter = 1;

    const newServer = async (name: string, clusterId: string, labels: Record<string, string>) =>
      (
        await alice.servers.createServer({
          clusterId,
          name,
          host: `10.98.0.${hostCounter++}`,
          credential: { method: { case: "privateKey", value: { key: key.privateKey } } },
          labels,
        })
      ).server!;

    before(async () => {
      if (backend === "postgres") pg = await startPostgres();
      api = await startTestApi({ databaseUrl: pg?.url });
      const owner = await api.newOwner();
      aliceId = owner.ownerId;
      alice = api.clients(owner.token);
      for (const c of ["a", "b"] as const) clusterIds[c] = (await alice.clusters.createCluster({ name: `cluster-${c}` })).cluster!.id;
      for (const [name, s] of Object.entries(fleet)) await newServer(name, clusterIds[s.cluster], s.labels);
      await api.database.db.update(servers).set({ status: "ONLINE" }).where(eq(servers.name, "web-1"));
      await api.database.db.update(servers).set({ status: "ERROR" }).where(eq(servers.name, "db-1"));
    });
    after(async () => {
      await api?.close();
      await pg?.stop();
    });

    const names = async (request: Parameters<typeof alice.servers.listServers>[0]) =>
      (await alice.servers.listServers({ pageSize: 500, ...request })).servers.map((s) => s.name).sort();

    test("each operator selects by label; != and notin also select servers without the key", async () => {
      const cases: [string, string[]][] = [
        ["role=web", ["web-1", "web-2"]],
        ["role==web", ["web-1", "web-2"]],
        ["env!=prod", ["bare-1", "cache-1", "web-2"]],
        ["tier in (a,b)", ["db-1", "web-1"]],
        ["tier notin (a)", ["bare-1", "cache-1", "db-1", "web-2"]],
        ["tier", ["db-1", "web-1"]],
        ["!tier", ["bare-1", "cache-1", "web-2"]],
        ["legacy=", ["db-1"]],
        ["legacy", ["db-1"]],
        ["example.com/zone=eu-1", ["cache-1"]],
        ["role=web,env=prod", ["web-1"]],
        ["role in (web, db), env=prod", ["db-1", "web-1"]],
        ["  role = web ,\t!tier  ", ["web-2"]],
        ["role=web,role!=web", []],
        ["", everyName],
        ["   ", everyName],
      ];
      for (const [selector, expected] of cases) assert.deepEqual(await names({ selector }), expected, selector);
    });

    test("a bad selector is InvalidArgument naming selector and the position", async () => {
      const cases: [string, RegExp][] = [
        ["tier in (a,b", /^selector: position 13: expected "\)" after value list, found end of selector$/],
        ["tier in (a b)", /^selector: position 12: expected "\)" after value list, found "b"$/],
        ["role=web,", /^selector: position 10: expected a label key, found end of selector$/],
        ["=web", /^selector: position 1: expected a label key, found "="$/],
        ["role=we b", /^selector: position 9: expected "," or end of selector, found "b"$/],
        ["role web", /^selector: position 6: expected an operator .* after key "role", found "web"$/],
        ["tier in a", /^selector: position 9: expected "\(" after in, found "a"$/],
        ["tier notin ()", /^selector: position 13: expected a value, found "\)"$/],
        ["role=-web", /^selector: position 6: "-web" is not a valid label value/],
        ["role=(web)", /^selector: position 6: expected a value, found "\("$/],
        ["-role=web", /^selector: position 1: "-role" is not a valid label key$/],
        ["!role=web", /^selector: position 6: expected "," or end of selector, found "="$/],
        ["role=web)", /^selector: position 9: expected "," or end of selector, found "\)"$/],
        ["ro\u0000le=web", /^selector: position 3: control characters are not allowed$/],
        ["rôle=web", /^selector: position 1: "rôle" is not a valid label key$/],
        ["a=b,,c", /^selector: position 5: expected a label key, found ","$/],
      ];
      for (const [selector, pattern] of cases) await expectCode(alice.servers.listServers({ selector }), Code.InvalidArgument, pattern);
    });

    test("selectors are bounded in length, requirements and set size", async () => {
      const keys = (n: number) => Array.from({ length: n }, (_, i) => `k${i}`);
      assert.deepEqual(await names({ selector: keys(64).join(",") }), [], "64 requirements are fine");
      await expectCode(
        alice.servers.listServers({ selector: keys(65).join(",") }),
        Code.InvalidArgument,
        /^selector: position \d+: at most 64 requirements$/,
      );
      assert.deepEqual(await names({ selector: `role in (${["web", ...keys(63)].join(",")})` }), ["web-1", "web-2"]);
      await expectCode(
        alice.servers.listServers({ selector: `role in (${keys(65).join(",")})` }),
        Code.InvalidArgument,
        /^selector: position \d+: at most 64 values in a set$/,
      );
      await expectCode(
        alice.servers.listServers({ selector: `role=${"x".repeat(1020)}` }),
        Code.InvalidArgument,
        /^selector: must be at most 1024 characters$/,
      );
      await expectCode(
        alice.servers.listServers({ selector: `${"k".repeat(64)}=v` }),
        Code.InvalidArgument,
        /^selector: position 1: "k{40}…" is not a valid label key$/,
      );
    });

    test("hostile selectors are refused as InvalidArgument, never internal, and change nothing", async () => {
      const hostile = [
        "'; drop table servers; --",
        "role='web' or '1'='1'",
        "role=web' or '1'='1",
        "role in (web) or 1=1",
        "(".repeat(1000),
        ")".repeat(1000),
        "!".repeat(1000),
        "=".repeat(1000),
        "role in (((((((",
        "a/b/c=d",
        "role=web\u202e",
        "\u{1F600}=x",
        "role\\=web",
        "role=$(touch /tmp/pwned)",
        "role=web\n",
      ];
      for (const selector of hostile) await expectCode(alice.servers.listServers({ selector }), Code.InvalidArgument, /^selector: /);
      const [left] = await api.database.db.select({ n: count() }).from(servers).where(eq(servers.ownerId, aliceId));
      assert.equal(left?.n, everyName.length);
    });

    test("ListServers filters by cluster, by statuses and by selector together", async () => {
      assert.deepEqual(await names({ clusterId: clusterIds.a }), ["cache-1", "web-1", "web-2"]);
      assert.deepEqual(await names({ clusterId: clusterIds.b, selector: "env=prod" }), ["db-1"]);
      assert.deepEqual(await names({ statuses: [ServerStatus.ONLINE, ServerStatus.ERROR] }), ["db-1", "web-1"]);
      assert.deepEqual(await names({ statuses: [ServerStatus.ONLINE, ServerStatus.ERROR], clusterId: clusterIds.a }), ["web-1"]);
      assert.deepEqual(await names({ statuses: [ServerStatus.PENDING], selector: "role=web" }), ["web-2"]);
      assert.deepEqual(
        await names({ status: ServerStatus.ONLINE, statuses: [ServerStatus.ERROR] }),
        ["db-1", "web-1"],
        "status joins statuses",
      );
      assert.deepEqual(await names({ status: ServerStatus.ONLINE }), ["web-1"]);
      const cluster = (await alice.clusters.listClusterServers({ clusterId: clusterIds.a })).servers.map((s) => s.name).sort();
      assert.deepEqual(cluster, ["cache-1", "web-1", "web-2"], "ListClusterServers unchanged");
    });

    test("unknown, foreign or malformed cluster ids and unknown statuses are refused, naming the field", async () => {
      const bob = api.clients((await api.newOwner()).token);
      const bobCluster = (await bob.clusters.createCluster({ name: "bobs" })).cluster!.id;
      await bob.servers.createServer({
        clusterId: bobCluster,
        name: "bob-1",
        host: "10.98.1.1",
        credential: { method: { case: "privateKey", value: { key: key.privateKey } } },
      });
      const foreign = await expectCode(alice.servers.listServers({ clusterId: bobCluster }), Code.NotFound, /cluster/);
      const unknown = await expectCode(
        alice.servers.listServers({ clusterId: "0190f5a8-0000-7000-8000-000000000000" }),
        Code.NotFound,
        /cluster/,
      );
      assert.equal(foreign.rawMessage.replace(bobCluster, "<id>"), unknown.rawMessage.replace(/[0-9a-f-]{36}/, "<id>"), "same as unknown");
      await expectCode(alice.servers.listServers({ clusterId: "nope" }), Code.InvalidArgument, /^cluster_id:/);
      await expectCode(alice.servers.listServers({ statuses: [ServerStatus.UNSPECIFIED] }), Code.InvalidArgument, /^statuses\[0\]:/);
      await expectCode(
        alice.servers.listServers({ statuses: [ServerStatus.ONLINE, 99 as ServerStatus] }),
        Code.InvalidArgument,
        /^statuses\[1\]:/,
      );
      await expectCode(alice.servers.listServers({ status: 42 as ServerStatus }), Code.InvalidArgument, /^status:/);
      assert.ok(!(await names({ selector: "" })).includes("bob-1"), "another owner's servers never listed");
    });

    test("filtered pages neither skip nor repeat servers, also while servers are added", async () => {
      const pool = await alice.clusters.createCluster({ name: "paging" });
      const made: string[] = [];
      for (let i = 0; i < 7; i++) made.push((await newServer(`page-${i}`, pool.cluster!.id, { batch: i % 2 === 0 ? "even" : "odd" })).id);
      const seen: string[] = [];
      let token = "";
      let pages = 0;
      do {
        const page = await alice.servers.listServers({ pageSize: 2, pageToken: token, selector: "batch=even" });
        assert.ok(page.servers.length <= 2);
        seen.push(...page.servers.map((s) => s.id));
        token = page.nextPageToken;
        // A server added meanwhile has a later id: it comes on a later page, once.
        if (pages++ === 0) made.push((await newServer("page-late", pool.cluster!.id, { batch: "even" })).id);
      } while (token !== "");
      const evens = made.filter((_, i) => i % 2 === 0 || i === 7);
      assert.deepEqual(seen, evens, "every even server once, in id order, the late one last");
      await api.database.db.delete(servers).where(inArray(servers.id, made));
    });

    test("selectTargetServers: every match ordered by name then id, refused above max, errors name target", async () => {
      const db = api.database.db;
      const all = await selectTargetServers(db, { id: aliceId }, {}, 100);
      assert.deepEqual(
        all.map((s) => s.name),
        everyName,
      );
      const web = await selectTargetServers(db, { id: aliceId }, { clusterId: clusterIds.a, selector: "role=web" }, 2);
      assert.deepEqual(
        web.map((s) => [s.name, s.status]),
        [
          ["web-1", "ONLINE"],
          ["web-2", "PENDING"],
        ],
      );
      assert.deepEqual(
        (await selectTargetServers(db, { id: aliceId }, { statuses: ["ERROR"] }, 1)).map((s) => s.name),
        ["db-1"],
      );
      await assert.rejects(selectTargetServers(db, { id: aliceId }, { selector: "role=web" }, 1), {
        message: /^target: matches more than 1 servers/,
      });
      await assert.rejects(selectTargetServers(db, { id: aliceId }, { selector: "role in (" }, 10), {
        message: /^target\.selector: position 10:/,
      });
      await assert.rejects(selectTargetServers(db, { id: aliceId }, { clusterId: "x" }, 10), { message: /^target\.cluster_id:/ });
      const other = await api.newOwner();
      await assert.rejects(selectTargetServers(db, { id: other.ownerId }, { clusterId: clusterIds.a }, 10), {
        message: /cluster .* not found/,
      });
    });
  });
}
