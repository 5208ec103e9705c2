import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { toJsonString } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { count, eq } from "drizzle-orm";
import { revokeOwnerToken } from "../core/inventory/owners.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { clusters, serverCredentials, servers } from "../db/schema.js";
import { ServerSchema, ServerStatus, SshAuthMethod } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { startTestApi, type TestApi, testCredentialsKey } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { testBackends } from "./support/backends.js";
import { ed25519KeyPair } from "./support/keys.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

const key = ed25519KeyPair();
const encryptedKey = ed25519KeyPair("correct horse");
const password = "p@ss'w\"ord; $(touch /tmp/pwned)";

for (const backend of testBackends()) {
  describe(`inventory API on ${backend}`, () => {
    let pg: TestPostgres | undefined;
    let api: TestApi;
    let alice: ReturnType<TestApi["clients"]>;
    let aliceToken: string;

    before(async () => {
      if (backend === "postgres") pg = await startPostgres();
      api = await startTestApi({ databaseUrl: pg?.url });
      aliceToken = (await api.newOwner()).token;
      alice = api.clients(aliceToken);
    });
    after(async () => {
      await api?.close();
      await pg?.stop();
    });

    const newCluster = async (client = alice, name = `c-${Math.random().toString(36).slice(2, 10)}`) =>
      (await client.clusters.createCluster({ name, description: "test", labels: { env: "test" } })).cluster!;
    let hostCounter = 1;
    const nextHost = () => `10.99.${Math.floor(hostCounter / 250)}.${(hostCounter++ % 250) + 1}`;
    const newServer = async (clusterId: string, client = alice, extra: Record<string, unknown> = {}) =>
      (
        await client.servers.createServer({
          clusterId,
          name: `s-${Math.random().toString(36).slice(2, 10)}`,
          host: nextHost(),
          credential: { method: { case: "privateKey", value: { key: key.privateKey } } },
          ...extra,
        })
      ).server!;

    test("clusters: create, get, update, list, delete", async () => {
      const created = await newCluster(alice, "prod");
      assert.equal(created.name, "prod");
      assert.deepEqual(created.labels, { env: "test" });
      assert.equal(created.serverCount, 0);
      const got = (await alice.clusters.getCluster({ id: created.id })).cluster!;
      assert.equal(got.id, created.id);

      const renamed = (await alice.clusters.updateCluster({ id: created.id, name: "production", labels: { entries: { tier: "1" } } }))
        .cluster!;
      assert.equal(renamed.name, "production");
      assert.equal(renamed.description, "test", "fields not set in the update are kept");
      assert.deepEqual(renamed.labels, { tier: "1" });

      const listed = (await alice.clusters.listClusters({})).clusters.map((c) => c.id);
      assert.ok(listed.includes(created.id));

      await alice.clusters.deleteCluster({ id: created.id });
      await expectCode(alice.clusters.getCluster({ id: created.id }), Code.NotFound);
      await expectCode(alice.clusters.deleteCluster({ id: created.id }), Code.NotFound);
    });

    test("clusters: duplicate names are AlreadyExists, non-empty delete is FailedPrecondition", async () => {
      const cluster = await newCluster(alice, "dup");
      await expectCode(alice.clusters.createCluster({ name: "dup" }), Code.AlreadyExists, /name/);
      const other = await newCluster(alice, "dup-2");
      await expectCode(alice.clusters.updateCluster({ id: other.id, name: "dup" }), Code.AlreadyExists, /name/);
      const server = await newServer(cluster.id);
      await expectCode(alice.clusters.deleteCluster({ id: cluster.id }), Code.FailedPrecondition, /still has 1 server/);
      assert.equal((await alice.clusters.getCluster({ id: cluster.id })).cluster?.serverCount, 1);
      const members = await alice.clusters.listClusterServers({ clusterId: cluster.id });
      assert.deepEqual(
        members.servers.map((s) => s.id),
        [server.id],
      );
      await alice.servers.deleteServer({ id: server.id });
      await alice.clusters.deleteCluster({ id: cluster.id });
    });

    test("servers: create with a key, an encrypted key and a password; get, update, move, delete", async () => {
      const cluster = await newCluster();
      const target = await newCluster();
      await expectCode(newServer(cluster.id, alice, { sshPort: 0 }), Code.InvalidArgument, /^ssh_port:/);
      const withKey = await newServer(cluster.id, alice, { sshUser: "", labels: { role: "web" } });
      assert.equal(withKey.sshPort, 22, "no port means 22 (0 is not a port, as on update)");
      assert.equal(withKey.sshUser, "root", "an empty user means root");
      assert.equal(withKey.authMethod, SshAuthMethod.PRIVATE_KEY);
      assert.equal(withKey.status, ServerStatus.PENDING);
      assert.deepEqual(withKey.labels, { role: "web" });

      const withEncrypted = await newServer(cluster.id, alice, {
        credential: { method: { case: "privateKey", value: { key: encryptedKey.privateKey, passphrase: "correct horse" } } },
      });
      assert.equal(withEncrypted.authMethod, SshAuthMethod.PRIVATE_KEY);
      const withPassword = await newServer(cluster.id, alice, {
        host: "db-1.example.internal",
        sshPort: 2222,
        sshUser: "deploy",
        credential: { method: { case: "password", value: password } },
      });
      assert.equal(withPassword.authMethod, SshAuthMethod.PASSWORD);
      const v6 = await newServer(cluster.id, alice, { host: "2001:db8::10" });
      assert.equal(v6.host, "2001:db8::10");

      // A pinned host key is forgotten when the address changes: it may be another machine.
      await api.database.db.update(servers).set({ hostKeyFingerprint: "SHA256:abc" }).where(eq(servers.id, withKey.id));
      const sameHost = (await alice.servers.updateServer({ id: withKey.id, sshUser: "admin" })).server!;
      assert.equal(sameHost.hostKeyFingerprint, "SHA256:abc");
      assert.equal(sameHost.sshUser, "admin");
      const moved = (await alice.servers.updateServer({ id: withKey.id, host: "10.98.0.1", clusterId: target.id })).server!;
      assert.equal(moved.host, "10.98.0.1");
      assert.equal(moved.clusterId, target.id);
      assert.equal(moved.hostKeyFingerprint, "");
      assert.equal(moved.name, withKey.name);

      const switched = (
        await alice.servers.updateServer({ id: withKey.id, credential: { method: { case: "password", value: "new-secret" } } })
      ).server!;
      assert.equal(switched.authMethod, SshAuthMethod.PASSWORD);

      const got = (await alice.servers.getServer({ id: withPassword.id })).server!;
      assert.equal(got.host, "db-1.example.internal");
      assert.equal(got.sshPort, 2222);

      await alice.servers.deleteServer({ id: withPassword.id });
      await expectCode(alice.servers.getServer({ id: withPassword.id }), Code.NotFound);
      const [credential] = await api.database.db.select().from(serverCredentials).where(eq(serverCredentials.serverId, withPassword.id));
      assert.equal(credential, undefined, "the credential goes with the server");
    });

    test("servers: duplicate name or host:port is AlreadyExists", async () => {
      const cluster = await newCluster();
      const first = await newServer(cluster.id);
      await expectCode(newServer(cluster.id, alice, { name: first.name }), Code.AlreadyExists, /^name:/);
      await expectCode(newServer(cluster.id, alice, { host: first.host }), Code.AlreadyExists, /^host:/);
      const second = await newServer(cluster.id);
      await expectCode(alice.servers.updateServer({ id: second.id, name: first.name }), Code.AlreadyExists, /^name:/);
    });

    test("lists are paginated with stable order and opaque tokens", async () => {
      const owner = api.clients((await api.newOwner()).token);
      const made: string[] = [];
      for (let i = 0; i < 7; i++) made.push((await newCluster(owner, `page-${i}`)).id);
      const seen: string[] = [];
      let token = "";
      let pages = 0;
      do {
        const page = await owner.clusters.listClusters({ pageSize: 3, pageToken: token });
        assert.ok(page.clusters.length <= 3);
        seen.push(...page.clusters.map((c) => c.id));
        token = page.nextPageToken;
        pages += 1;
      } while (token !== "");
      assert.deepEqual(seen, made, "every cluster once, in creation order");
      assert.equal(pages, 3);

      const cluster = made[0] as string;
      const serverIds: string[] = [];
      for (let i = 0; i < 5; i++) serverIds.push((await newServer(cluster, owner)).id);
      const first = await owner.clusters.listClusterServers({ clusterId: cluster, pageSize: 2 });
      const second = await owner.clusters.listClusterServers({ clusterId: cluster, pageSize: 2, pageToken: first.nextPageToken });
      const rest = await owner.servers.listServers({ pageSize: 2, pageToken: second.nextPageToken });
      assert.deepEqual(
        [...first.servers, ...second.servers, ...rest.servers].map((s) => s.id),
        serverIds,
      );
      assert.equal(rest.nextPageToken, "");

      await expectCode(owner.clusters.listClusters({ pageToken: "not-a-token" }), Code.InvalidArgument, /^page_token:/);
      await expectCode(owner.clusters.listClusters({ pageSize: 501 }), Code.InvalidArgument, /^page_size:/);
      const pending = await owner.servers.listServers({ status: ServerStatus.PENDING });
      assert.equal(pending.servers.length, 5);
      const online = await owner.servers.listServers({ status: ServerStatus.ONLINE });
      assert.equal(online.servers.length, 0);
    });

    test("invalid input is InvalidArgument naming the field, and nothing is written", async () => {
      const cluster = await newCluster();
      const base = {
        clusterId: cluster.id,
        name: "valid-name",
        host: "10.1.2.3",
        credential: { method: { case: "privateKey" as const, value: { key: key.privateKey } } },
      };
      const cases: [string, Record<string, unknown>, RegExp][] = [
        ["bad host", { host: "10.0.0.1; touch /tmp/pwned" }, /^host:/],
        ["numeric non-IP host", { host: "999.1.1.1" }, /^host:/],
        ["host with a leading dash", { host: "-oProxyCommand=x" }, /^host:/],
        ["port out of range", { sshPort: 70000 }, /^ssh_port:/],
        ["shell metacharacter in user", { sshUser: "root;rm -rf /" }, /^ssh_user:/],
        ["command substitution in user", { sshUser: "$(id)" }, /^ssh_user:/],
        ["upper-case name", { name: "Web 1" }, /^name:/],
        ["bad label key", { labels: { "bad key": "x" } }, /^labels:/],
        ["bad label value", { labels: { env: "a b" } }, /^labels:/],
        ["missing credential", { credential: undefined }, /^credential:/],
        [
          "malformed key",
          { credential: { method: { case: "privateKey", value: { key: "-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n" } } } },
          /^credential\.private_key\.key: is not a valid private key/,
        ],
        [
          "public key instead of private",
          { credential: { method: { case: "privateKey", value: { key: key.publicKey } } } },
          /^credential\.private_key\.key:/,
        ],
        [
          "encrypted key without passphrase",
          { credential: { method: { case: "privateKey", value: { key: encryptedKey.privateKey } } } },
          /^credential\.private_key\.key: is encrypted/,
        ],
        [
          "encrypted key, wrong passphrase",
          { credential: { method: { case: "privateKey", value: { key: encryptedKey.privateKey, passphrase: "nope" } } } },
          /^credential\.private_key\.key:/,
        ],
        ["empty password", { credential: { method: { case: "password", value: "" } } }, /^credential\.password:/],
        ["cluster id not a uuid", { clusterId: "prod" }, /^cluster_id:/],
      ];
      const rowsBefore = (await api.database.db.select({ n: count() }).from(servers))[0]?.n;
      for (const [what, change, pattern] of cases) {
        await expectCode(alice.servers.createServer({ ...base, ...change }), Code.InvalidArgument, pattern).catch((error: Error) => {
          throw new Error(`${what}: ${error.message}`);
        });
      }
      const rowsAfter = (await api.database.db.select({ n: count() }).from(servers))[0]?.n;
      assert.equal(rowsAfter, rowsBefore, "no server row written by a refused create");

      const server = await newServer(cluster.id);
      await expectCode(alice.servers.updateServer({ id: server.id, sshPort: 0 }), Code.InvalidArgument, /^ssh_port:/);
      await expectCode(alice.servers.updateServer({ id: server.id, host: "a b" }), Code.InvalidArgument, /^host:/);
      await expectCode(alice.servers.updateServer({ id: server.id, credential: {} }), Code.InvalidArgument, /^credential:/);
      const unchanged = (await alice.servers.getServer({ id: server.id })).server!;
      assert.equal(unchanged.host, server.host);
      await expectCode(alice.clusters.createCluster({ name: "" }), Code.InvalidArgument, /^name:/);
      await expectCode(alice.clusters.createCluster({ name: "x", description: "d".repeat(2000) }), Code.InvalidArgument, /^description:/);
      await expectCode(alice.clusters.getCluster({ id: "1' or '1'='1" }), Code.InvalidArgument, /^id:/);
    });

    test("auth: a missing, wrong or revoked token is Unauthenticated", async () => {
      await expectCode(api.clients(undefined).clusters.listClusters({}), Code.Unauthenticated, /missing/);
      await expectCode(api.clients("axn_wrong").clusters.listClusters({}), Code.Unauthenticated, /invalid/);
      const { token } = await api.newOwner();
      await api.clients(token).clusters.listClusters({});
      assert.ok(await revokeOwnerToken(api.database.db, token));
      await expectCode(api.clients(token).clusters.listClusters({}), Code.Unauthenticated);
      const health = await fetch(`${api.baseUrl}/healthz`);
      assert.equal(health.status, 200, "the health endpoint needs no token");
    });

    test("tenant isolation: another owner's ids answer NotFound on every method and nothing changes", async () => {
      const cluster = await newCluster(alice, "alice-only");
      const server = await newServer(cluster.id);
      const bob = api.clients((await api.newOwner()).token);
      const bobCluster = await newCluster(bob, "bob-cluster");
      const bobServer = await newServer(bobCluster.id, bob);

      await expectCode(bob.clusters.getCluster({ id: cluster.id }), Code.NotFound);
      await expectCode(bob.clusters.updateCluster({ id: cluster.id, name: "stolen" }), Code.NotFound);
      await expectCode(bob.clusters.deleteCluster({ id: cluster.id }), Code.NotFound);
      await expectCode(bob.clusters.listClusterServers({ clusterId: cluster.id }), Code.NotFound);
      await expectCode(newServer(cluster.id, bob), Code.NotFound);
      await expectCode(bob.servers.getServer({ id: server.id }), Code.NotFound);
      await expectCode(bob.servers.updateServer({ id: server.id, host: "10.66.6.6" }), Code.NotFound);
      await expectCode(bob.servers.deleteServer({ id: server.id }), Code.NotFound);
      await expectCode(bob.servers.updateServer({ id: bobServer.id, clusterId: cluster.id }), Code.NotFound);
      assert.ok(!(await bob.clusters.listClusters({ pageSize: 500 })).clusters.some((c) => c.id === cluster.id));
      assert.ok(!(await bob.servers.listServers({ pageSize: 500 })).servers.some((s) => s.id === server.id));
      // Names are per owner: bob may use alice's names.
      await newCluster(bob, "alice-only");

      const after = (await alice.servers.getServer({ id: server.id })).server!;
      assert.equal(after.host, server.host);
      assert.equal(after.clusterId, cluster.id);
      assert.equal((await alice.clusters.getCluster({ id: cluster.id })).cluster?.name, "alice-only");
      assert.equal((await bob.servers.getServer({ id: bobServer.id })).server?.clusterId, bobCluster.id);
    });

    test("MAX_SERVERS_PER_USER holds under 50 concurrent creates", async () => {
      const limit = 25;
      const limited = await startTestApi({ databaseUrl: pg?.url, maxServersPerOwner: limit });
      try {
        const owner = limited.clients((await limited.newOwner()).token);
        const cluster = await newCluster(owner);
        for (let i = 0; i < limit - 5; i++) await newServer(cluster.id, owner);
        const results = await Promise.allSettled(Array.from({ length: 50 }, () => newServer(cluster.id, owner)));
        const created = results.filter((r) => r.status === "fulfilled").length;
        assert.equal(created, 5, "exactly the room left is filled");
        for (const r of results) if (r.status === "rejected") await expectCode(Promise.reject(r.reason), Code.ResourceExhausted, /limit/);
        const [row] = await limited.database.db.select({ n: count() }).from(servers).where(eq(servers.clusterId, cluster.id));
        assert.equal(row?.n, limit);
        await expectCode(newServer(cluster.id, owner), Code.ResourceExhausted);
      } finally {
        await limited.close();
      }
    });

    test("credentials are stored encrypted and never returned", async () => {
      const cluster = await newCluster();
      const keyed = await newServer(cluster.id, alice, {
        credential: { method: { case: "privateKey", value: { key: encryptedKey.privateKey, passphrase: "correct horse" } } },
      });
      const passworded = await newServer(cluster.id, alice, { credential: { method: { case: "password", value: password } } });
      const cipher = createCredentialsCipher(testCredentialsKey);
      const secrets = [encryptedKey.privateKey, "correct horse", password, key.privateKey];
      const keyBody = (pem: string) => pem.split("\n").slice(1, -2).join("");

      for (const [server, secret] of [
        [keyed, encryptedKey.privateKey],
        [passworded, password],
      ] as const) {
        const [row] = await api.database.db.select().from(serverCredentials).where(eq(serverCredentials.serverId, server.id));
        assert.ok(row, "a credential row exists");
        assert.match(row.envelope, /^v1\.[0-9a-f]{16}\./);
        assert.equal(row.keyId, cipher.activeKeyId);
        for (const s of secrets) {
          assert.ok(!row.envelope.includes(s), "no plaintext secret in the row");
          assert.ok(!row.envelope.includes(Buffer.from(s).toString("base64").slice(0, 40)), "not merely base64 either");
        }
        assert.ok(!row.envelope.includes(keyBody(encryptedKey.privateKey).slice(0, 40)));
        assert.ok(cipher.decrypt(row.envelope, server.id).includes(JSON.stringify(secret).slice(1, -1)));
        assert.throws(() => cipher.decrypt(row.envelope, cluster.id), /failed authentication/, "bound to its own row");
      }

      const responses = [
        toJsonString(ServerSchema, (await alice.servers.getServer({ id: keyed.id })).server!),
        toJsonString(ServerSchema, (await alice.servers.getServer({ id: passworded.id })).server!),
        JSON.stringify((await alice.servers.listServers({ pageSize: 500 })).servers.map((s) => toJsonString(ServerSchema, s))),
        JSON.stringify(
          (await alice.clusters.listClusterServers({ clusterId: cluster.id })).servers.map((s) => toJsonString(ServerSchema, s)),
        ),
        toJsonString(ServerSchema, (await alice.servers.updateServer({ id: keyed.id, labels: { entries: { a: "b" } } })).server!),
      ];
      const raw = await fetch(`${api.baseUrl}/axion.infrastructure.v1.ServerService/GetServer`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${aliceToken}` },
        body: JSON.stringify({ id: passworded.id }),
      });
      responses.push(await raw.text());
      for (const body of responses) {
        for (const s of [...secrets, keyBody(encryptedKey.privateKey).slice(0, 30)])
          assert.ok(!body.includes(s), "no secret in a response");
        assert.ok(!/passphrase|"password"|privateKey|envelope/i.test(body), "no credential field in a response");
      }
    });

    test("gRPC and gRPC-Web are served on the same port as Connect", async () => {
      const cluster = await newCluster(alice, "multi-protocol");
      for (const protocol of ["grpc", "grpc-web"] as const) {
        const client = api.clients(aliceToken, protocol);
        const got = await client.clusters.getCluster({ id: cluster.id });
        assert.equal(got.cluster?.name, "multi-protocol", protocol);
        await expectCode(client.clusters.getCluster({ id: "00000000-0000-7000-8000-000000000000" }), Code.NotFound);
        await expectCode(api.clients("wrong", protocol).clusters.listClusters({}), Code.Unauthenticated);
      }
      const [row] = await api.database.db.select({ n: count() }).from(clusters).where(eq(clusters.name, "multi-protocol"));
      assert.equal(row?.n, 1);
    });
  });
}
