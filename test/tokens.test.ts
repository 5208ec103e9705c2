// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { eq } from "drizzle-orm";
import { ensureAdminToken, hashToken, MAX_LIVE_TOKENS_PER_OWNER } from "../core/inventory/owners.js";
import { openDatabase } from "../db/client.js";
import { apiTokens } from "../db/schema.js";
import { ListTokensResponseSchema, TokenService } from "../gen/axion/infrastructure/v1/token_service_pb.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { testBackends } from "./support/backends.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const backend of testBackends()) {
  describe(`owner tokens on ${backend}`, () => {
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

    const tokens = (token: string) => {
      const auth: Interceptor = (next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      };
      return createClient(TokenService, createConnectTransport({ baseUrl: api.baseUrl, httpVersion: "1.1", interceptors: [auth] }));
    };
    /** Any owner-scoped call: succeeds while the token is good. */
    const use = (token: string) => api.clients(token).clusters.listClusters({});

    test("an owner lists its tokens: prefix, created, last used; never the token or its hash", async () => {
      const { token } = await api.newOwner();
      const first = (await tokens(token).listTokens({})).tokens;
      assert.equal(first.length, 1);
      const own = first[0]!;
      assert.equal(own.prefix, token.slice(0, 12), "axn_ and 8 characters");
      assert.ok(own.createTime, "created");
      assert.ok(own.lastUseTime, "the listing call itself is a use");
      assert.equal(own.current, true);
      assert.equal(own.expireTime, undefined);
      assert.equal(own.revokeTime, undefined);

      const created = await tokens(token).createToken({ label: "ci deploy" });
      assert.match(created.bearerToken, /^axn_[A-Za-z0-9_-]{43}$/);
      assert.equal(created.token!.prefix, created.bearerToken.slice(0, 12));
      assert.equal(created.token!.label, "ci deploy");
      assert.equal(created.token!.lastUseTime, undefined, "not used yet");
      await use(created.bearerToken);

      const listed = await tokens(token).listTokens({});
      assert.deepEqual(
        listed.tokens.map((t) => [t.label, t.current, t.lastUseTime !== undefined]),
        [
          ["", true, true],
          ["ci deploy", false, true],
        ],
      );
      const json = toJsonString(ListTokensResponseSchema, listed);
      for (const secret of [token, created.bearerToken]) {
        assert.ok(!json.includes(secret), "no token in the listing");
        assert.ok(!json.includes(hashToken(secret)), "no hash in the listing");
      }
    });

    test("last use is written at most once a minute, not once per request", async () => {
      const { token } = await api.newOwner();
      const firstUse = (await tokens(token).listTokens({})).tokens[0]!.lastUseTime;
      for (let i = 0; i < 5; i++) await use(token);
      const later = (await tokens(token).listTokens({})).tokens[0]!.lastUseTime;
      assert.deepEqual(later, firstUse);
    });

    test("a revoked token is refused at its next call; an owner may revoke the token it calls with", async () => {
      const { token } = await api.newOwner();
      const other = await tokens(token).createToken({ label: "other" });
      await use(other.bearerToken);
      const revoked = (await tokens(token).revokeToken({ id: other.token!.id })).token!;
      assert.ok(revoked.revokeTime);
      await expectCode(use(other.bearerToken), Code.Unauthenticated);
      const again = (await tokens(token).revokeToken({ id: other.token!.id })).token!;
      assert.deepEqual(again.revokeTime, revoked.revokeTime, "revoking twice keeps the first time");

      const self = (await tokens(token).listTokens({})).tokens.find((t) => t.current)!;
      await tokens(token).revokeToken({ id: self.id });
      await expectCode(use(token), Code.Unauthenticated);
      await expectCode(tokens(token).listTokens({}), Code.Unauthenticated);
    });

    test("a token stops working once its expiry passes", async () => {
      const { token } = await api.newOwner();
      const shortLived = await tokens(token).createToken({ label: "short", expireTime: timestampFromMs(Date.now() + 2500) });
      assert.ok(shortLived.token!.expireTime);
      await use(shortLived.bearerToken);
      await sleep(2700);
      await expectCode(use(shortLived.bearerToken), Code.Unauthenticated);
      await expectCode(
        tokens(token).setTokenExpiry({ id: shortLived.token!.id, expireTime: timestampFromMs(Date.now() + 3_600_000) }),
        Code.FailedPrecondition,
        /revoked or expired/,
      );

      const live = await tokens(token).createToken({ label: "ends now" });
      await use(live.bearerToken);
      await tokens(token).setTokenExpiry({ id: live.token!.id, expireTime: timestampFromMs(Date.now() - 1000) });
      await expectCode(use(live.bearerToken), Code.Unauthenticated);
      await use(token);
    });

    test("a token never creates a token, or moves an expiry, past its own expiry", async () => {
      const { token: owner } = await api.newOwner();
      const in30Minutes = Date.now() + 30 * 60_000;
      const shortLived = (await tokens(owner).createToken({ label: "ci job", expireTime: timestampFromMs(in30Minutes) })).bearerToken;
      const ownExpiry = Number((await tokens(shortLived).listTokens({})).tokens.find((t) => t.current)!.expireTime!.seconds);

      const forever = tokens(shortLived).createToken({ label: "forever" });
      await expectCode(forever, Code.InvalidArgument, /expire_time.*calling token/);
      const tenYears = timestampFromMs(Date.now() + 3650 * 86_400_000 - 60_000);
      await expectCode(tokens(shortLived).createToken({ label: "later", expireTime: tenYears }), Code.InvalidArgument, /expire_time/);
      const ownId = (await tokens(shortLived).listTokens({})).tokens.find((t) => t.current)!.id;
      await expectCode(tokens(shortLived).setTokenExpiry({ id: ownId, expireTime: tenYears }), Code.InvalidArgument, /expire_time/);
      const ownerTokens = (await tokens(owner).listTokens({})).tokens;
      const longLivedId = ownerTokens.find((t) => t.current)!.id;
      await expectCode(tokens(shortLived).setTokenExpiry({ id: longLivedId, expireTime: tenYears }), Code.InvalidArgument, /expire_time/);
      assert.equal((await tokens(owner).listTokens({})).tokens.length, 2, "nothing was created");
      assert.equal(
        Number((await tokens(shortLived).listTokens({})).tokens.find((t) => t.current)!.expireTime!.seconds),
        ownExpiry,
        "its own expiry did not move",
      );

      const earlier = timestampFromMs(in30Minutes - 10 * 60_000);
      const child = await tokens(shortLived).createToken({ label: "shorter", expireTime: earlier });
      assert.equal(Number(child.token!.expireTime!.seconds), Number(earlier.seconds), "a shorter expiry is allowed");
      await tokens(shortLived).setTokenExpiry({ id: ownId, expireTime: earlier });
      const unlimited = await tokens(owner).createToken({ label: "no expiry from a token without one" });
      assert.equal(unlimited.token!.expireTime, undefined);
    });

    test("bad token requests are InvalidArgument naming the field, and nothing is written", async () => {
      const { token, ownerId } = await api.newOwner();
      const client = tokens(token);
      const cases: [() => Promise<unknown>, RegExp][] = [
        [() => client.createToken({ label: "x".repeat(65) }), /^label: /],
        [() => client.createToken({ label: "a\u0000b" }), /^label: .*control/],
        [() => client.createToken({ label: "AXION_ADMIN_TOKEN" }), /^label: .*reserved/],
        [() => client.createToken({ expireTime: timestampFromMs(Date.now() - 1000) }), /^expire_time: must be in the future/],
        [() => client.createToken({ expireTime: { seconds: 10n ** 15n, nanos: 0 } }), /^expire_time: must be at most 10 years/],
        [() => client.createToken({ expireTime: { seconds: -5n, nanos: 0 } }), /^expire_time: /],
        [() => client.revokeToken({ id: "not-a-uuid" }), /^id: must be a UUID/],
        [() => client.setTokenExpiry({ id: "'; drop table api_tokens; --" }), /^id: must be a UUID/],
      ];
      for (const [call, pattern] of cases) await expectCode(call(), Code.InvalidArgument, pattern);
      const own = (await client.listTokens({})).tokens[0]!;
      await expectCode(client.setTokenExpiry({ id: own.id }), Code.InvalidArgument, /^expire_time: is required/);
      const rows = await api.database.db.select().from(apiTokens).where(eq(apiTokens.ownerId, ownerId));
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.expiresAt, null);
    });

    test(`an owner holds at most ${MAX_LIVE_TOKENS_PER_OWNER} live tokens`, async () => {
      const { token } = await api.newOwner();
      const client = tokens(token);
      const made = [];
      for (let i = 1; i < MAX_LIVE_TOKENS_PER_OWNER; i++) made.push(await client.createToken({ label: `t${i}` }));
      await expectCode(client.createToken({}), Code.ResourceExhausted, /at most 100/);
      await client.revokeToken({ id: made[0]!.token!.id });
      await client.createToken({ label: "after a revocation" });
    });

    test("another owner's token id answers NotFound and the token keeps working", async () => {
      const alice = await api.newOwner();
      const bob = await api.newOwner();
      const aliceTokenId = (await tokens(alice.token).listTokens({})).tokens[0]!.id;
      await expectCode(tokens(bob.token).revokeToken({ id: aliceTokenId }), Code.NotFound);
      await expectCode(
        tokens(bob.token).setTokenExpiry({ id: aliceTokenId, expireTime: timestampFromMs(Date.now() - 1000) }),
        Code.NotFound,
      );
      const bobs = (await tokens(bob.token).listTokens({})).tokens.map((t) => t.id);
      assert.ok(!bobs.includes(aliceTokenId));
      await use(alice.token);
      const [row] = await api.database.db.select().from(apiTokens).where(eq(apiTokens.id, aliceTokenId));
      assert.equal(row!.revokedAt, null);
      assert.equal(row!.expiresAt, null);
    });

    test("a changed AXION_ADMIN_TOKEN revokes the token the previous value created", async () => {
      const first = "first-admin-token-000001";
      const second = "second-admin-token-00002";
      // Each start runs on its own connection, as a restarted process would.
      const start = async (value: string) => {
        const handle = api.database.kind === "postgres" ? await openDatabase({ databaseUrl: pg!.url, dataDir: "memory://" }) : api.database;
        await ensureAdminToken(handle.db, value);
        if (handle !== api.database) await handle.close();
      };
      await start(first);
      await use(first);
      await start(first);
      await use(first);
      const adminTokens = (await tokens(first).listTokens({})).tokens;
      assert.equal(adminTokens.length, 1, "the same value keeps its one token");
      assert.equal(adminTokens[0]!.label, "AXION_ADMIN_TOKEN");
      assert.equal(adminTokens[0]!.prefix, "first-", "a token of another form shows a quarter of itself");

      await start(second);
      await expectCode(use(first), Code.Unauthenticated);
      await use(second);

      // A process still configured with the old value restarts: it revokes nothing.
      await start(first);
      await expectCode(use(first), Code.Unauthenticated);
      await use(second);
      const listed = (await tokens(second).listTokens({})).tokens;
      assert.deepEqual(
        listed.map((t) => [t.prefix, t.revokeTime !== undefined]),
        [
          ["first-", true],
          ["second", false],
        ],
      );
    });

    test("AXION_ADMIN_TOKEN equal to another owner's token stops the start", async () => {
      const { token } = await api.newOwner();
      await assert.rejects(ensureAdminToken(api.database.db, token), /AXION_ADMIN_TOKEN is already a token of another owner/);
      await use(token);
    });
  });
}
