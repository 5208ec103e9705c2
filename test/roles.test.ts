// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create, type DescMethod, type DescService, toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createConnectRouter, createContextValues, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { authorizationInterceptor } from "../api/authorization.js";
import { ownerKey } from "../api/context.js";
import { permissionOf } from "../api/permissions.js";
import { type RoutedApiDeps, routes } from "../api/routes.js";
import { roleAtLeast } from "../core/inventory/owner-scope.js";
import { type Role, roles } from "../core/kernel/kinds.js";
import { startOperation } from "../core/operations/operations.js";
import { newId } from "../db/ids.js";
import { alerts } from "../db/schema.js";
import { RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { ListServersResponseSchema } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { Role as ProtoRole, TokenService } from "../gen/axion/infrastructure/v1/token_service_pb.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { testBackends } from "./support/backends.js";
import { ed25519KeyPair } from "./support/keys.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

/** Every method the API routes, from the generated descriptors, except the agents' own (their token is per server). */
function routedMethods(): DescMethod[] {
  const router = createConnectRouter();
  routes({} as RoutedApiDeps, {} as Parameters<typeof routes>[1], 1024)(router);
  return router.handlers
    .map((h) => h.method)
    .filter((m) => m.parent.typeName.startsWith("axion.") && !["Register", "Heartbeat"].includes(m.name));
}

const protoRole: Record<Role, ProtoRole> = { viewer: ProtoRole.VIEWER, operator: ProtoRole.OPERATOR, admin: ProtoRole.ADMIN };

for (const backend of testBackends())
  describe(`roles and cluster-limited tokens on ${backend}`, () => {
    let pg: TestPostgres | undefined;
    let api: TestApi;
    let adminToken: string;
    let ownerId: string;
    let clusterA: string;
    let clusterB: string;
    let serverA: string;
    let serverB: string;
    let operationB: string;
    let alertB: string;
    const key = ed25519KeyPair();
    /** A token of each role, and an operator and an admin limited to cluster A. */
    const tokens = {} as Record<Role | "scopedOperator" | "scopedAdmin", string>;
    let stranger: string;

    const transport = (token: string) => {
      const auth: Interceptor = (next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      };
      return createConnectTransport({ baseUrl: api.baseUrl, httpVersion: "1.1", interceptors: [auth] });
    };
    const tokenClient = (token: string) => createClient(TokenService, transport(token));

    /** The answer of a call as the code and message a client sees ("OK" when it succeeds). */
    async function answer(call: () => Promise<unknown>): Promise<{ code: string; message: string }> {
      try {
        await call();
        return { code: "OK", message: "" };
      } catch (error) {
        const e = ConnectError.from(error);
        return { code: Code[e.code], message: e.rawMessage };
      }
    }

    /** Calls `method` with an empty request (every id empty: nothing is found, nothing is changed). */
    function callEmpty(token: string, method: DescMethod) {
      const client = createClient(method.parent as DescService, transport(token)) as unknown as Record<
        string,
        (req: unknown) => Promise<unknown> | AsyncIterable<unknown>
      >;
      const call = client[method.localName] as (req: unknown) => Promise<unknown> | AsyncIterable<unknown>;
      return answer(async () => {
        const result = call(create(method.input));
        if (method.methodKind === "server_streaming") {
          for await (const _ of result as AsyncIterable<unknown>) break;
        } else await result;
      });
    }

    before(async () => {
      if (backend === "postgres") pg = await startPostgres();
      api = await startTestApi({ databaseUrl: pg?.url });
      ({ token: adminToken, ownerId } = await api.newOwner("roles"));
      const admin = api.clients(adminToken);
      clusterA = (await admin.clusters.createCluster({ name: "a" })).cluster!.id;
      clusterB = (await admin.clusters.createCluster({ name: "b" })).cluster!.id;
      const newServer = async (clusterId: string, name: string, host: string) =>
        (
          await admin.servers.createServer({
            clusterId,
            name,
            host,
            labels: { role: "web" },
            credential: { method: { case: "privateKey", value: { key: key.privateKey } } },
          })
        ).server!.id;
      serverA = await newServer(clusterA, "web-a", "203.0.113.10");
      serverB = await newServer(clusterB, "web-b", "203.0.113.11");
      operationB = (await startOperation(api.database.db, { id: ownerId, name: "roles", role: "admin" }, serverB, "test_connection")).id;
      alertB = newId();
      await api.database.db.insert(alerts).values({
        id: alertB,
        ownerId,
        serverId: serverB,
        rule: "server_offline",
        subject: serverB,
        state: "firing",
        summary: "web-b is offline",
        since: new Date(),
      });
      const mint = async (role: Role, clusterIds: string[] = []) =>
        (await tokenClient(adminToken).createToken({ label: `${role}${clusterIds.length ? " a" : ""}`, role: protoRole[role], clusterIds }))
          .bearerToken;
      for (const role of roles) tokens[role] = await mint(role);
      tokens.scopedOperator = await mint("operator", [clusterA]);
      tokens.scopedAdmin = await mint("admin", [clusterA]);
      stranger = (await api.newOwner("stranger")).token;
    });
    after(async () => {
      await api?.close();
      await pg?.stop();
    });

    test("every routed RPC, as each role: below its declared role PermissionDenied naming the role, at or above anything else", async () => {
      const methods = routedMethods();
      assert.ok(methods.length > 40, `routed ${methods.length}`);
      const holders: [string, Role, string][] = [
        ["viewer", "viewer", tokens.viewer],
        ["operator", "operator", tokens.operator],
        ["admin", "admin", tokens.admin],
        ["operator limited to cluster a", "operator", tokens.scopedOperator],
      ];
      const wrong: string[] = [];
      for (const method of methods) {
        const permission = permissionOf(method);
        assert.ok(permission && permission.role !== "agent", `${method.name} has a member role`);
        for (const [who, role, token] of holders) {
          const { code, message } = await callEmpty(token, method);
          const allowed = roleAtLeast(role, permission.role as Role);
          if (!allowed && (code !== "PermissionDenied" || !message.includes(`needs the ${permission.role} role`)))
            wrong.push(`${method.name} as ${who}: ${code} ${message}`);
          if (allowed && code === "PermissionDenied") wrong.push(`${method.name} as ${who}: refused (${message})`);
        }
      }
      assert.deepEqual(wrong, []);
    });

    test("a call above the token's role is refused before its input is looked at", async () => {
      const response = await fetch(`${api.baseUrl}/axion.infrastructure.v1.ServerService/DeleteServer`, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens.viewer}`, "content-type": "application/json" },
        body: JSON.stringify({ id: serverA, notAField: true }),
      });
      const body = (await response.json()) as { code: string; message: string };
      assert.deepEqual(body, { code: "permission_denied", message: "DeleteServer needs the admin role; this token is viewer" });
      assert.equal((await api.clients(adminToken).servers.getServer({ id: serverA })).server!.id, serverA, "still there");
    });

    test("a method with no declared permission is refused, whatever the role", async () => {
      const undeclared = { name: "Undeclared", parent: { typeName: "axion.test.v1.Nothing" } } as unknown as DescMethod;
      const contextValues = createContextValues().set(ownerKey, { id: ownerId, name: "roles", role: "admin" });
      const next = async () => {
        throw new Error("reached the handler");
      };
      await assert.rejects(
        authorizationInterceptor(next as never)({ method: undeclared, contextValues } as never),
        (e: unknown) => e instanceof ConnectError && e.code === Code.PermissionDenied && /no declared permission/.test(e.rawMessage),
      );
    });

    test("a limited token's lists hold only its clusters' clusters, servers, rollouts' targets and alerts", async () => {
      const scoped = api.clients(tokens.scopedOperator);
      assert.deepEqual(
        (await scoped.clusters.listClusters({})).clusters.map((c) => c.name),
        ["a"],
      );
      assert.deepEqual(
        (await scoped.servers.listServers({})).servers.map((s) => s.id),
        [serverA],
      );
      assert.deepEqual(
        (await scoped.servers.listServers({ selector: "role=web" })).servers.map((s) => s.id),
        [serverA],
      );
      assert.deepEqual(
        (await scoped.notifications.listAlerts({})).alerts.map((a) => a.id),
        [],
      );
      assert.deepEqual(
        (await api.clients(tokens.viewer).notifications.listAlerts({})).alerts.map((a) => a.id),
        [alertB],
        "an unlimited viewer sees it",
      );
      // A rollout target selects only the servers inside: the same selector, all of the owner's for an unlimited token.
      const plan = (token: string) =>
        api.clients(token).rollouts.planRollout({ kind: RolloutKind.TEST_CONNECTION, target: { selector: "role=web" } });
      assert.deepEqual(
        (await plan(tokens.scopedOperator)).batches.flatMap((b) => b.serverIds),
        [serverA],
      );
      assert.deepEqual((await plan(tokens.operator)).batches.flatMap((b) => b.serverIds).sort(), [serverA, serverB].sort());
    });

    test("out of a limited token's clusters answers exactly what another owner's id answers", async () => {
      const scoped = api.clients(tokens.scopedAdmin);
      const other = api.clients(stranger);
      const same = async (what: string, call: (c: typeof scoped) => Promise<unknown>) => {
        const inside = await answer(() => call(scoped));
        const foreign = await answer(() => call(other));
        assert.equal(inside.code, "NotFound", `${what}: ${inside.message}`);
        assert.deepEqual(inside, foreign, what);
      };
      await same("GetServer", (c) => c.servers.getServer({ id: serverB }));
      await same("GetCluster", (c) => c.clusters.getCluster({ id: clusterB }));
      await same("ListServers of cluster b", (c) => c.servers.listServers({ clusterId: clusterB }));
      await same("ListClusterServers", (c) => c.clusters.listClusterServers({ clusterId: clusterB }));
      await same("GetOperation", (c) => c.operations.getOperation({ id: operationB }));
      await same("ListOperations", (c) => c.operations.listOperations({ serverId: serverB }));
      await same("GetAlert", (c) => c.notifications.getAlert({ id: alertB }));
      await same("ListMetrics", (c) => c.agents.listMetrics({ id: serverB }));
      await same("GetAgentStatus", (c) => c.agents.getAgentStatus({ id: serverB }));
      await same("DeleteServer", (c) => c.servers.deleteServer({ id: serverB }));
      await same("UpdateCluster", (c) => c.clusters.updateCluster({ id: clusterB, name: "renamed" }));
      await same("PlanRollout of a named server", (c) =>
        c.rollouts.planRollout({ kind: RolloutKind.TEST_CONNECTION, target: { serverIds: [serverB] } }),
      );
      await same("CreateServer in cluster b", (c) =>
        c.servers.createServer({
          clusterId: clusterB,
          name: "sneaky",
          host: "203.0.113.12",
          credential: { method: { case: "password", value: "not-a-real-one" } },
        }),
      );
      // Moving its server out: NotFound on the cluster, the answer to any other owner's cluster id.
      assert.deepEqual(await answer(() => scoped.servers.updateServer({ id: serverA, clusterId: clusterB })), {
        code: "NotFound",
        message: `cluster ${clusterB} not found`,
      });
      assert.equal((await api.clients(adminToken).servers.getServer({ id: serverA })).server!.clusterId, clusterA, "not moved");
      await expectCode(scoped.clusters.createCluster({ name: "c" }), Code.PermissionDenied, /limited to clusters cannot create/);
    });

    test("tokens never exceed their creator: role, clusters, expiry", async () => {
      await expectCode(
        tokenClient(tokens.viewer).createToken({ label: "up", role: ProtoRole.OPERATOR }),
        Code.PermissionDenied,
        /^role: .*viewer/,
      );
      await expectCode(tokenClient(tokens.operator).createToken({ label: "up", role: ProtoRole.ADMIN }), Code.PermissionDenied, /^role:/);
      const child = await tokenClient(tokens.operator).createToken({ label: "child" });
      assert.equal(child.token!.role, ProtoRole.OPERATOR, "no role asked: the creator's");

      // A limited token cannot mint an unlimited one, nor one for a cluster outside its own.
      const inherited = await tokenClient(tokens.scopedOperator).createToken({ label: "ci", role: ProtoRole.VIEWER });
      assert.deepEqual(inherited.token!.clusterIds, [clusterA]);
      await expectCode(
        tokenClient(tokens.scopedOperator).createToken({ label: "wider", clusterIds: [clusterB] }),
        Code.NotFound,
        new RegExp(`cluster ${clusterB} not found`),
      );
      assert.deepEqual(
        (await api.clients(inherited.bearerToken).servers.listServers({})).servers.map((s) => s.id),
        [serverA],
      );

      // A token that expires in 30 minutes cannot mint one that never expires, nor one that outlives it.
      const soon = Date.now() + 30 * 60_000;
      const shortLived = (
        await tokenClient(adminToken).createToken({ label: "short", role: ProtoRole.OPERATOR, expireTime: timestampFromMs(soon) })
      ).bearerToken;
      await expectCode(tokenClient(shortLived).createToken({ label: "forever" }), Code.InvalidArgument, /^expire_time:/);
      await expectCode(
        tokenClient(shortLived).createToken({ label: "later", expireTime: timestampFromMs(soon + 60_000) }),
        Code.InvalidArgument,
        /^expire_time:/,
      );
      const made = await tokenClient(shortLived).createToken({ label: "within", expireTime: timestampFromMs(soon - 60_000) });
      await expectCode(
        tokenClient(shortLived).setTokenExpiry({ id: made.token!.id, expireTime: timestampFromMs(soon + 86_400_000) }),
        Code.InvalidArgument,
        /^expire_time:/,
      );

      // A limited admin cannot lengthen the life of an unlimited token.
      const adminTokens = (await tokenClient(adminToken).listTokens({})).tokens;
      const unlimitedOperator = adminTokens.find((t) => t.label === "operator")!;
      await expectCode(
        tokenClient(tokens.scopedAdmin).setTokenExpiry({ id: unlimitedOperator.id, expireTime: timestampFromMs(Date.now() + 86_400_000) }),
        Code.PermissionDenied,
      );
    });

    test("a viewer or operator lists and revokes only itself and the tokens it created; an admin all of the owner's", async () => {
      const viewerToken = (await tokenClient(adminToken).createToken({ label: "second viewer", role: ProtoRole.VIEWER })).bearerToken;
      const viewer = tokenClient(viewerToken);
      const made = await viewer.createToken({ label: "viewer's own" });
      assert.equal(made.token!.createdByTokenId, (await viewer.listTokens({})).tokens.find((t) => t.current)!.id);
      assert.deepEqual(
        (await viewer.listTokens({})).tokens.map((t) => t.label),
        ["second viewer", "viewer's own"],
      );
      const all = (await tokenClient(adminToken).listTokens({})).tokens;
      const adminsOwn = all.find((t) => t.current)!;
      assert.ok(all.length > 5 && all.some((t) => t.label === "viewer's own"), "the admin sees every token");
      const refused = await answer(() => viewer.revokeToken({ id: adminsOwn.id }));
      const foreign = await answer(() => tokenClient(stranger).revokeToken({ id: adminsOwn.id }));
      assert.equal(refused.code, "NotFound");
      assert.deepEqual(refused, foreign, "another token of the owner is like another owner's");
      await viewer.revokeToken({ id: made.token!.id });
      await expectCode(api.clients(made.bearerToken).clusters.listClusters({}), Code.Unauthenticated);
      assert.equal((await api.clients(adminToken).clusters.listClusters({})).clusters.length, 2, "the admin's token still works");
    });

    test("a viewer reads a server with a key and sees no secret", async () => {
      const listed = await api.clients(tokens.viewer).servers.listServers({});
      const json = toJsonString(ListServersResponseSchema, listed);
      assert.equal(listed.servers.length, 2);
      const keyBody = key.privateKey
        .split("\n")
        .filter((l) => l && !l.startsWith("-----"))
        .join("");
      for (const piece of [keyBody.slice(0, 24), keyBody.slice(-24), "PRIVATE KEY"]) assert.ok(!json.includes(piece), piece);
    });
  });
