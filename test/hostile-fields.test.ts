import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { count, eq, sql } from "drizzle-orm";
import { MAX_ERROR_MESSAGE } from "../api/errors.js";
import {
  calculateRequirements,
  MAX_DEPENDENCIES,
  MAX_PLACEMENT_STEPS,
  MAX_REPLICAS,
  MAX_SERVICES,
  MAX_TOTAL_REPLICAS,
  type ServerCapacity,
  type ServiceNodeInput,
} from "../core/inventory/requirements.js";
import { hasUnsafeCharacters } from "../core/kernel/text.js";
import { startOperation } from "../core/operations/operations.js";
import { clusters, serverCredentials, servers } from "../db/schema.js";
import { AgentService } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { NotificationService } from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import { OperationService } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ProviderAccountService } from "../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import { RequirementsService } from "../gen/axion/infrastructure/v1/requirements_service_pb.js";

import { RolloutService } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { TokenService } from "../gen/axion/infrastructure/v1/token_service_pb.js";
import { startTestApi, type TestApi } from "./support/api.js";

import { expectCode } from "./support/assertions.js";
import { testBackends } from "./support/backends.js";
import { ed25519KeyPair } from "./support/keys.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";
import { type RawAnswer, sendRawRpc } from "./support/raw-rpc.js";

const key = ed25519KeyPair();
const encryptedKey = ed25519KeyPair("correct horse");
const controlChars = /(?![\t\n])\p{Cc}/u;

/** Runs `during` while collecting every line the process writes to stderr (the logger's error stream). */
async function capturingStderr(during: () => Promise<unknown>): Promise<string> {
  const original = process.stderr.write.bind(process.stderr);
  let captured = "";
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    captured += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    await during().catch(() => {});
  } finally {
    process.stderr.write = original;
  }
  return captured;
}

for (const backend of testBackends()) {
  describe(`hostile fields on ${backend}`, () => {
    let pg: TestPostgres | undefined;
    let api: TestApi;
    let alice: ReturnType<TestApi["clients"]>;
    let aliceOwnerId: string;
    let requirements: ReturnType<typeof createClient<typeof RequirementsService>>;

    before(async () => {
      if (backend === "postgres") pg = await startPostgres();
      api = await startTestApi({ databaseUrl: pg?.url });
      const owner = await api.newOwner();
      aliceOwnerId = owner.ownerId;
      alice = api.clients(owner.token);
      requirements = createClient(
        RequirementsService,
        createConnectTransport({
          baseUrl: api.baseUrl,
          httpVersion: "1.1",
          interceptors: [
            (next) => (req) => {
              req.header.set("authorization", `Bearer ${owner.token}`);
              return next(req);
            },
          ],
        }),
      );
    });
    after(async () => {
      await api?.close();
      await pg?.stop();
    });

    const rowCounts = async () => {
      const db = api.database.db;
      const [c] = await db.select({ n: count() }).from(clusters);
      const [s] = await db.select({ n: count() }).from(servers);
      const [k] = await db.select({ n: count() }).from(serverCredentials);
      return { clusters: c?.n, servers: s?.n, credentials: k?.n };
    };
    let hosts = 1;
    const nextHost = () => `10.77.${Math.floor(hosts / 250)}.${(hosts++ % 250) + 1}`;
    const newCluster = async () =>
      (await alice.clusters.createCluster({ name: `c-${Math.random().toString(36).slice(2, 10)}`, description: "kept" })).cluster!;

    /** Expects InvalidArgument naming `field`, with a message that echoes no control character. */
    const refused = async (what: string, call: Promise<unknown>, field: string) => {
      const escaped = field.replace(/[.[\]]/g, "\\$&");
      const error = await expectCode(call, Code.InvalidArgument, new RegExp(`^${escaped}:`)).catch((e: Error) => {
        throw new Error(`${what}: ${e.message}`);
      });
      assert.ok(!controlChars.test(error.rawMessage), `${what}: the message echoes no control character`);
    };

    test("NUL, control characters and over-long values in every kind of field are InvalidArgument naming the field; nothing is written", async () => {
      const cluster = await newCluster();
      const before = await rowCounts();
      const long = (n: number) => "a".repeat(n);

      // Clusters: names, descriptions, labels.
      const clusterCases: [string, Parameters<typeof alice.clusters.createCluster>[0], string][] = [
        ["NUL in a name", { name: "web\u0000" }, "name"],
        ["over-long name", { name: long(64) }, "name"],
        ["NUL in a description", { name: "ok-1", description: "a\u0000b" }, "description"],
        ["bell in a description", { name: "ok-1", description: "a\u0007b" }, "description"],
        ["C1 control in a description", { name: "ok-1", description: "a\u009bb" }, "description"],
        ["over-long description", { name: "ok-1", description: long(1025) }, "description"],
        ["NUL in a label key", { name: "ok-1", labels: { "k\u0000": "v" } }, "labels"],
        ["NUL in a label value", { name: "ok-1", labels: { k: "v\u0000" } }, "labels"],
        ["over-long label key", { name: "ok-1", labels: { [long(70_000)]: "v" } }, "labels"],
      ];
      for (const [what, request, field] of clusterCases) await refused(what, alice.clusters.createCluster(request), field);
      await refused(
        "NUL in an updated description",
        alice.clusters.updateCluster({ id: cluster.id, description: "\u0000" }),
        "description",
      );
      assert.equal((await alice.clusters.getCluster({ id: cluster.id })).cluster?.description, "kept");

      // Servers: names, hosts, users, passwords, keys, passphrases, providers, ids.
      const base = {
        clusterId: cluster.id,
        name: "valid-name",
        host: nextHost(),
        credential: { method: { case: "password" as const, value: "secret" } },
      };
      const serverCases: [string, Record<string, unknown>, string][] = [
        ["NUL in a name", { name: "a\u0000" }, "name"],
        ["NUL in a host", { host: "10.0.0.1\u0000" }, "host"],
        ["70,000-character host", { host: `${"a".repeat(63)}.`.repeat(1100) }, "host"],
        ["NUL in an ssh user", { sshUser: "root\u0000" }, "ssh_user"],
        ["NUL in a password", { credential: { method: { case: "password", value: "pass\u0000word" } } }, "credential.password"],
        ["newline in a password", { credential: { method: { case: "password", value: "pass\nword" } } }, "credential.password"],
        ["over-long password", { credential: { method: { case: "password", value: long(1025) } } }, "credential.password"],
        [
          "NUL in a private key",
          { credential: { method: { case: "privateKey", value: { key: `${key.privateKey}\u0000` } } } },
          "credential.private_key.key",
        ],
        [
          "over-long private key",
          { credential: { method: { case: "privateKey", value: { key: long(16_385) } } } },
          "credential.private_key.key",
        ],
        [
          "NUL in a passphrase",
          { credential: { method: { case: "privateKey", value: { key: encryptedKey.privateKey, passphrase: "correct horse\u0000" } } } },
          "credential.private_key.passphrase",
        ],
        [
          "over-long passphrase",
          { credential: { method: { case: "privateKey", value: { key: encryptedKey.privateKey, passphrase: long(1025) } } } },
          "credential.private_key.passphrase",
        ],
        ["NUL in a label value", { labels: { role: "web\u0000" } }, "labels"],
        ["NUL in a provider", { provider: "time4vps\u0000" }, "provider"],
        ["NUL in a provider server id", { providerServerId: "12\u0000" }, "provider_server_id"],
        ["NUL in a cluster id", { clusterId: `${cluster.id}\u0000` }, "cluster_id"],
        ["over-long cluster id", { clusterId: long(70_000) }, "cluster_id"],
      ];
      for (const [what, change, field] of serverCases) await refused(what, alice.servers.createServer({ ...base, ...change }), field);

      const server = (await alice.servers.createServer(base)).server!;
      const credentialBefore = await api.database.db.select().from(serverCredentials).where(eq(serverCredentials.serverId, server.id));
      await refused(
        "NUL in an updated password",
        alice.servers.updateServer({ id: server.id, credential: { method: { case: "password", value: "\u0000" } } }),
        "credential.password",
      );
      await refused("NUL in an updated name", alice.servers.updateServer({ id: server.id, name: "x\u0000" }), "name");
      await refused("NUL in an os", alice.servers.reinstallServer({ id: server.id, os: "debian\u0000" }), "os");
      const credentialAfter = await api.database.db.select().from(serverCredentials).where(eq(serverCredentials.serverId, server.id));
      assert.deepEqual(credentialAfter, credentialBefore, "the stored credential is untouched");
      assert.equal((await alice.servers.getServer({ id: server.id })).server?.name, "valid-name");

      // Ids and page tokens, on every service.
      await refused("NUL in a cluster id", alice.clusters.getCluster({ id: `${cluster.id}\u0000` }), "id");
      await refused("over-long server id", alice.servers.getServer({ id: long(70_000) }), "id");
      await refused("NUL in an operation id", alice.operations.getOperation({ id: "\u0000" }), "id");
      await refused("NUL in a server id", alice.operations.listOperations({ serverId: "\u0000" }), "server_id");
      await refused("NUL in a page token", alice.clusters.listClusters({ pageToken: "\u0000" }), "page_token");
      await refused("over-long page token", alice.servers.listServers({ pageToken: long(70_000) }), "page_token");
      await refused(
        "NUL in a cluster servers page token",
        alice.clusters.listClusterServers({ clusterId: cluster.id, pageToken: "ab\u0001" }),
        "page_token",
      );

      // Requirements: service names, dependency ends, the cluster id.
      const requests = { cpuMillis: 1n, memoryBytes: 1n, diskBytes: 1n };
      await refused(
        "NUL in a service name",
        requirements.calculateSystemRequirements({ services: [{ name: "web\u0000", requests }] }),
        "services[0].name",
      );
      await refused(
        "NUL in a dependency",
        requirements.calculateSystemRequirements({
          services: [{ name: "web", requests }],
          dependencies: [{ from: "web", to: "\u0000db" }],
        }),
        "dependencies[0].to",
      );
      await refused(
        "NUL in a requirements cluster id",
        requirements.calculateSystemRequirements({ services: [{ name: "web", requests }], clusterId: "\u0000" }),
        "cluster_id",
      );

      assert.deepEqual(await rowCounts(), { ...before, servers: (before.servers ?? 0) + 1, credentials: (before.credentials ?? 0) + 1 });
    });

    test("a NUL in a password is refused at CreateServer, before anything connects", async () => {
      const cluster = await newCluster();
      const before = await rowCounts();
      await refused(
        "NUL password",
        alice.servers.createServer({
          clusterId: cluster.id,
          name: "nul-password",
          host: nextHost(),
          credential: { method: { case: "password", value: "hunter2\u0000" } },
        }),
        "credential.password",
      );
      assert.deepEqual(await rowCounts(), before);
    });

    test("descriptions keep newlines and tabs, passwords keep printable Unicode", async () => {
      const cluster = (await alice.clusters.createCluster({ name: "multi-line", description: "line 1\n\tline 2 ✓" })).cluster!;
      assert.equal(cluster.description, "line 1\n\tline 2 ✓");
      const server = (
        await alice.servers.createServer({
          clusterId: cluster.id,
          name: "unicode-password",
          host: nextHost(),
          credential: { method: { case: "password", value: "pässwörd ✓ $(id) `id` 'x\"" } },
        })
      ).server!;
      assert.equal(server.name, "unicode-password");
    });

    for (const protocol of ["connect", "grpc"] as const) {
      test(`WatchOperation over ${protocol}: a missing or another owner's id is NotFound, a malformed one InvalidArgument`, async () => {
        const client = api.clients((await api.newOwner()).token, protocol);
        const cluster = await newCluster();
        const server = (
          await alice.servers.createServer({
            clusterId: cluster.id,
            name: `watched-${protocol}`,
            host: nextHost(),
            credential: { method: { case: "password", value: "secret" } },
          })
        ).server!;
        const alicesOperation = await startOperation(api.database.db, { id: aliceOwnerId } as never, server.id, "recovery");
        const watch = async (id: string) => {
          for await (const _ of client.operations.watchOperation({ id })) {
            assert.fail("no message for an operation the caller may not see");
          }
        };
        await expectCode(watch(alicesOperation.id), Code.NotFound, /not found/);
        await expectCode(watch("0190a0d6-0000-7000-8000-000000000000"), Code.NotFound, /not found/);
        await expectCode(watch("not-a-uuid"), Code.InvalidArgument, /^id:/);
        // The unary RPC answers the same.
        await expectCode(client.operations.getOperation({ id: alicesOperation.id }), Code.NotFound);
        await expectCode(client.operations.getOperation({ id: "not-a-uuid" }), Code.InvalidArgument, /^id:/);
      });
    }

    test("an unexpected database error is logged by class, SQLSTATE and constraint, without the query's parameters", async () => {
      const db = api.database.db;
      await db.execute(sql.raw("alter table clusters add constraint test_no_canary check (position('canary' in description) = 0)"));
      try {
        const canary = "canary-4f1c9e secret description";
        let answer: unknown;
        const logged = await capturingStderr(async () => {
          answer = await alice.clusters.createCluster({ name: "canary-cluster", description: canary }).catch((e: unknown) => e);
        });
        assert.ok(answer instanceof ConnectError && answer.code === Code.Internal, "the violation is an internal error");
        assert.equal((answer as ConnectError).rawMessage, "internal error", "the client learns nothing of the query");
        const line = logged.split("\n").find((l) => l.includes("request failed"));
        assert.ok(line, `a log line for the failure, got: ${logged}`);
        assert.ok(!line.includes("canary-4f1c9e"), `no parameter value in the log line: ${line}`);
        assert.ok(!/insert into|params/i.test(line), `no query text in the log line: ${line}`);
        const entry = JSON.parse(line) as Record<string, unknown>;
        assert.equal(entry.code, "23514");
        assert.equal(entry.constraint, "test_no_canary");
        assert.equal(entry.procedure, "CreateCluster");
        assert.equal((await db.select({ n: count() }).from(clusters).where(eq(clusters.name, "canary-cluster")))[0]?.n, 0);
      } finally {
        await db.execute(sql.raw("alter table clusters drop constraint test_no_canary"));
      }
    });

    test("CalculateSystemRequirements refuses inputs over its documented bounds, naming the field", async () => {
      const requests = { cpuMillis: 1n, memoryBytes: 1n, diskBytes: 1n };
      const many = (n: number, replicas = 1) => Array.from({ length: n }, (_, i) => ({ name: `s-${i}`, requests, replicas }));
      await refused("too many services", requirements.calculateSystemRequirements({ services: many(MAX_SERVICES + 1) }), "services");
      await refused(
        "too many replicas of one service",
        requirements.calculateSystemRequirements({ services: many(1, MAX_REPLICAS + 1) }),
        "services[0].replicas",
      );
      await refused(
        "too many replicas in all",
        requirements.calculateSystemRequirements({ services: many(Math.ceil(MAX_TOTAL_REPLICAS / MAX_REPLICAS) + 1, MAX_REPLICAS) }),
        "services",
      );
      const services = many(2);
      const dependencies = Array.from({ length: MAX_DEPENDENCIES + 1 }, () => ({ from: "s-1", to: "s-0" }));
      await refused("too many dependencies", requirements.calculateSystemRequirements({ services, dependencies }), "dependencies");
      // The largest request the bounds allow is answered.
      const maximal = await requirements.calculateSystemRequirements({
        services: Array.from({ length: MAX_SERVICES }, (_, i) => ({
          name: `s-${i}`,
          requests,
          replicas: MAX_TOTAL_REPLICAS / MAX_SERVICES,
        })),
        dependencies: Array.from({ length: MAX_DEPENDENCIES }, (_, i) => ({ from: `s-${(i % (MAX_SERVICES - 1)) + 1}`, to: "s-0" })),
      });
      assert.equal(maximal.total?.cpuMillis, BigInt(MAX_TOTAL_REPLICAS));
    });
  });
}

describe("requirements placement bounds", () => {
  const server = (i: number): ServerCapacity => ({
    serverId: `srv-${String(i).padStart(4, "0")}`,
    capacity: { cpuMillis: 1_000_000, memoryBytes: 1_000_000, diskBytes: 1_000_000 },
    used: { cpuMillis: 0, memoryBytes: 0, diskBytes: 0 },
  });
  const services = (n: number, replicas: number): ServiceNodeInput[] =>
    Array.from({ length: n }, (_, i) => ({ name: `s-${i}`, requests: { cpuMillis: 1, memoryBytes: 1, diskBytes: 1 }, replicas }));

  test("placing more replicas × servers than MAX_PLACEMENT_STEPS is InvalidArgument naming services", () => {
    const serverCount = 200;
    const replicas = Math.floor(MAX_PLACEMENT_STEPS / serverCount) + 1;
    assert.ok(replicas <= MAX_TOTAL_REPLICAS, "the bound bites before the total-replicas bound");
    const fleet = Array.from({ length: serverCount }, (_, i) => server(i));
    assert.throws(
      () => calculateRequirements(services(Math.ceil(replicas / MAX_REPLICAS), Math.min(replicas, MAX_REPLICAS)), [], fleet),
      (error: Error & { kind?: string }) => error.kind === "invalid_argument" && /^services: /.test(error.message),
    );
  });

  test("the maximal allowed placement is answered and places every replica", () => {
    const serverCount = MAX_PLACEMENT_STEPS / MAX_TOTAL_REPLICAS;
    const fleet = Array.from({ length: serverCount }, (_, i) => server(i));
    const result = calculateRequirements(services(MAX_SERVICES, MAX_TOTAL_REPLICAS / MAX_SERVICES), [], fleet);
    assert.equal(result.fit?.fits, true);
    assert.equal(result.fit?.placements.length, MAX_TOTAL_REPLICAS);
  });
});

/**
 * The sweep over every RPC and every field of its request (to three levels): wrong JSON types,
 * integers as anything but plain decimal, undeclared enum names and numbers, unknown keys, 900 KB
 * values, and hostile text (NUL, ESC [2J, C1, U+202E, lone surrogates); in binary, invalid UTF-8
 * in every string field and an unknown field number. Every answer: a message of at most
 * MAX_ERROR_MESSAGE characters and no unsafe character; a value the decoder refuses is named by
 * its field.
 */
describe("every RPC, every field: refusals name the field and quote little", () => {
  let api: TestApi;
  let token: string;
  before(async () => {
    api = await startTestApi();
    token = (await api.newOwner()).token;
  });
  after(async () => {
    await api?.close();
  });

  interface FieldAt {
    /** JSON member names from the request's root; a list is entered at its first item. */
    json: (string | 0)[];
    /** The field as a refusal names it: proto names, `services[0].name`. */
    proto: string;
    field: DescField;
  }
  const fieldsOf = (desc: DescMessage, depth = 0, json: (string | 0)[] = [], proto = ""): FieldAt[] =>
    desc.fields.flatMap((field) => {
      const list = field.fieldKind === "list";
      const at: FieldAt = {
        json: list ? [...json, field.jsonName, 0] : [...json, field.jsonName],
        proto: `${proto ? `${proto}.` : ""}${field.name}${list ? "[0]" : ""}`,
        field,
      };
      const kind = list ? field.listKind : field.fieldKind;
      const nested =
        kind === "message" && depth < 2 && !(field as { message: DescMessage }).message.typeName.startsWith("google.protobuf.")
          ? fieldsOf((field as { message: DescMessage }).message, depth + 1, at.json, at.proto)
          : [];
      return [at, ...nested];
    });
  /** A JSON request with `value` at `path`. */
  const requestWith = (path: (string | 0)[], value: unknown): unknown => {
    const [head, ...rest] = path;
    if (head === undefined) return value;
    if (head === 0) return [requestWith(rest, value)];
    return { [head]: requestWith(rest, value) };
  };
  const hostileText = "\u0000\u001b[2J\u001b]52;c;aGk=\u0007\u009b31m\u202e";
  /** Values the decoder must refuse, naming the field, by the field's kind. */
  const refusedValues = (f: DescField): unknown[] => {
    const kind = f.fieldKind === "list" ? f.listKind : f.fieldKind;
    if (kind === "map") return ["not an object", { [`k${hostileText}`]: 12 }];
    if (kind === "message") return [`${hostileText}x`, 7];
    if (kind === "enum") return [`TYPO${hostileText}`, 99, "9".repeat(900_000)];
    const scalar = (f as { scalar: ScalarType }).scalar;
    if (scalar === ScalarType.STRING) return [12, `a\ud800${hostileText}`, { "9": "9".repeat(900_000) }];
    if (scalar === ScalarType.BOOL) return [`yes${hostileText}`];
    if (scalar === ScalarType.BYTES) return [`%${hostileText}`];
    if (scalar === ScalarType.DOUBLE || scalar === ScalarType.FLOAT) return [`one${hostileText}`];
    return ["0x16", "1e1", "22.0", 22.5, `${hostileText}`, "9".repeat(900_000)];
  };
  const services = [
    ClusterService,
    ServerService,
    OperationService,
    RequirementsService,
    NotificationService,
    RolloutService,
    TokenService,
    ProviderAccountService,
    AgentService,
  ];

  const bounded = (what: string, a: RawAnswer) => {
    assert.ok(a.message.length <= MAX_ERROR_MESSAGE, `${what}: a message of ${a.message.length} characters`);
    assert.ok(!hasUnsafeCharacters(a.message), `${what}: no unsafe character in ${JSON.stringify(a.message)}`);
    assert.ok(a.size < 2048, `${what}: answered in ${a.size} bytes`);
  };

  for (const service of services) {
    test(`${service.name}: JSON values the decoder refuses are InvalidArgument naming the field; hostile text comes back escaped`, async () => {
      let sent = 0;
      for (const method of service.methods) {
        for (const at of fieldsOf(method.input)) {
          for (const value of refusedValues(at.field)) {
            const what = `${method.name} ${at.proto} = ${JSON.stringify(value).slice(0, 40)}`;
            const body = JSON.stringify(requestWith(at.json, value));
            const a = await sendRawRpc(api.baseUrl, token, method, body, { protocol: "connect", json: true });
            sent += 1;
            bounded(what, a);
            // The agents' RPCs take at most 64 KiB: a larger body is refused by its size before it is read.
            if (a.code === "ResourceExhausted" && service === AgentService && body.length > 64 * 1024) continue;
            assert.equal(a.code, "InvalidArgument", `${what}: ${a.code} ${a.message}`);
            assert.ok(a.message.startsWith(`${at.proto}`), `${what}: names ${at.proto}: ${a.message}`);
          }
          // Text the decoder takes: whatever the service answers is bounded and escaped.
          const kind = at.field.fieldKind === "list" ? at.field.listKind : at.field.fieldKind;
          if (kind === "scalar" && (at.field as { scalar: ScalarType }).scalar === ScalarType.STRING) {
            const what = `${method.name} ${at.proto} = hostile text`;
            const a = await sendRawRpc(api.baseUrl, token, method, JSON.stringify(requestWith(at.json, hostileText.repeat(20_000))), {
              protocol: "connect",
              json: true,
            });
            sent += 1;
            bounded(what, a);
          }
        }
        // An unknown key at the top.
        const a = await sendRawRpc(api.baseUrl, token, method, JSON.stringify({ [`typo${hostileText}`]: 1 }), {
          protocol: "connect",
          json: true,
        });
        bounded(`${method.name} unknown key`, a);
        assert.equal(a.code, "InvalidArgument");
        assert.ok(a.message.startsWith('"typo\\u0000'), `${method.name}: names the unknown key: ${a.message}`);
      }
      console.log(`${service.name}: ${sent} hostile values sent`);
    });

    test(`${service.name}: binary requests with invalid UTF-8 or an unknown field name the field, in every protocol`, async () => {
      for (const method of service.methods) {
        const strings = method.input.fields.filter(
          (f) => (f.fieldKind === "scalar" || f.fieldKind === "list") && (f as { scalar?: ScalarType }).scalar === ScalarType.STRING,
        );
        for (const protocol of ["connect", "grpc", "grpc-web"] as const) {
          for (const f of strings) {
            // Field f as a length-delimited record holding 0xC3 0x28 (not UTF-8).
            const body = Buffer.from([(f.number << 3) | 2, 2, 0xc3, 0x28]);
            const a = await sendRawRpc(api.baseUrl, token, method, body, { protocol, json: false });
            const name = f.fieldKind === "list" ? `${f.name}[0]` : f.name;
            bounded(`${method.name} ${name} over ${protocol}`, a);
            assert.equal(a.code, "InvalidArgument", `${method.name} ${name} over ${protocol}: ${a.message}`);
            assert.ok(a.message.startsWith(`${name}:`), `${method.name} over ${protocol}: names ${name}: ${a.message}`);
          }
          const unknown = await sendRawRpc(api.baseUrl, token, method, Buffer.from([0x98, 0x06, 0x03]), { protocol, json: false });
          bounded(`${method.name} unknown field over ${protocol}`, unknown);
          assert.equal(unknown.code, "InvalidArgument", `${method.name} unknown field over ${protocol}: ${unknown.message}`);
          assert.ok(unknown.message.startsWith("99:"), `${method.name} over ${protocol}: names field 99: ${unknown.message}`);
        }
      }
    });
  }
});
