import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { hostname, networkInterfaces } from "node:os";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { count, eq } from "drizzle-orm";
import { ConfigError, loadConfig } from "../core/kernel/config.js";
import { parseFibTrieLocal, parseIfInet6 } from "../core/security/local-addresses.js";
import { type Cidr, createNetworkPolicy, parseCidr } from "../core/security/network-policy.js";
import { servers } from "../db/schema.js";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ConnectionOutcome, ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { ed25519KeyPair } from "./support/keys.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";

const key = ed25519KeyPair();
const credential = { method: { case: "privateKey" as const, value: { key: key.privateKey } } };
const cidrs = (...list: string[]) => list.map((c) => parseCidr(c) as Cidr);
/** An address of one of this machine's interfaces that is not loopback (the test hosts' gateway, here). */
const ownAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && !i.internal && i.family === "IPv4")?.address;

/**
 * A name the system's hosts file maps to loopback that no name rule catches
 * (here "runsc"): only the check after resolution can refuse it.
 */
const loopbackAlias = readFileSync("/etc/hosts", "utf8")
  .split("\n")
  .map((line) => line.replace(/#.*/, "").trim().split(/\s+/))
  .filter(([address]) => address?.startsWith("127."))
  .flatMap(([, ...names]) => names)
  .find((name) => !/localhost|loopback/i.test(name) && name.toLowerCase() !== hostname().toLowerCase());

const refusedHosts: [string, RegExp][] = [
  ["127.0.0.1", /127\.0\.0\.1 is a loopback address/],
  ["127.8.9.10", /is a loopback address/],
  ["::1", /::1 is a loopback address/],
  ["0.0.0.0", /is an unspecified address/],
  ["::", /is an unspecified address/],
  ["169.254.169.254", /is a link-local address \(cloud metadata endpoints live here\)/],
  ["fe80::1", /is a link-local address/],
  ["fd00:ec2::254", /is a cloud metadata endpoint/],
  ["224.0.0.251", /is a multicast address/],
  ["ff02::1", /is a multicast address/],
  ["255.255.255.255", /is the broadcast address/],
  ["::ffff:127.0.0.1", /::ffff:127\.0\.0\.1 \(127\.0\.0\.1\) is a loopback address/],
  ["::ffff:169.254.169.254", /is a link-local address/],
  ["64:ff9b::a9fe:a9fe", /\(169\.254\.169\.254\) is a link-local address/],
  ["localhost", /localhost names this machine/],
  ["LocalHost.", /names this machine/],
  ["web.localhost", /names this machine/],
  ["localhost.localdomain", /names this machine/],
  ["ip6-localhost", /names this machine/],
  ...(ownAddress ? ([[ownAddress, /is an address of this service's own machine/]] as [string, RegExp][]) : []),
];

describe("the network policy decides which addresses servers may have", () => {
  test("built-in classes are refused, private and public ranges allowed", () => {
    const policy = createNetworkPolicy();
    for (const [host, why] of refusedHosts) assert.match(policy.hostProblem(host) ?? "allowed", why, host);
    for (const host of [
      "10.213.0.5",
      "192.168.1.20",
      "172.16.4.4",
      "100.64.1.1",
      "203.0.113.10",
      "2001:db8::10",
      "fd12:3456::1",
      "db-1.example.internal",
    ]) {
      assert.equal(policy.hostProblem(host), undefined, host);
    }
  });

  test("operators narrow and widen it with CIDR allow and deny lists; deny wins", () => {
    const denyTen = createNetworkPolicy({ deny: cidrs("10.0.0.0/8", "2001:db8:bad::/48") });
    assert.match(denyTen.addressProblem("10.1.2.3") ?? "", /in SERVER_ADDRESS_DENY \(10\.0\.0\.0\/8\)/);
    assert.match(denyTen.addressProblem("::ffff:10.1.2.3") ?? "", /in SERVER_ADDRESS_DENY/, "the IPv4-mapped form too");
    assert.match(denyTen.addressProblem("2001:db8:bad::7") ?? "", /in SERVER_ADDRESS_DENY/);
    assert.equal(denyTen.addressProblem("192.168.0.1"), undefined);

    const onlyTestNet = createNetworkPolicy({ allow: cidrs("203.0.113.0/24") });
    assert.equal(onlyTestNet.addressProblem("203.0.113.7"), undefined);
    assert.match(onlyTestNet.addressProblem("198.51.100.1") ?? "", /outside SERVER_ADDRESS_ALLOW/);
    assert.match(onlyTestNet.addressProblem("127.0.0.1") ?? "", /loopback/, "a wide allow list never re-admits a refused class");

    const loopbackDev = createNetworkPolicy({ allow: cidrs("127.0.0.1", "0.0.0.0/0", "::/0") });
    assert.equal(loopbackDev.addressProblem("127.0.0.1"), undefined, "an allow entry inside a refused class re-admits it");
    assert.match(loopbackDev.addressProblem("127.0.0.2") ?? "", /loopback/, "only what it names");
    assert.match(loopbackDev.addressProblem("169.254.169.254") ?? "", /link-local/, "0.0.0.0/0 does not re-admit anything");
    assert.equal(loopbackDev.addressProblem("203.0.113.9"), undefined);

    const both = createNetworkPolicy({ allow: cidrs("10.0.0.0/8", "127.0.0.1"), deny: cidrs("10.9.0.0/16", "127.0.0.0/8") });
    assert.match(both.addressProblem("10.9.1.1") ?? "", /in SERVER_ADDRESS_DENY/, "deny wins over allow");
    assert.match(both.addressProblem("127.0.0.1") ?? "", /in SERVER_ADDRESS_DENY/, "deny wins over a re-admission");
    assert.equal(both.addressProblem("10.8.1.1"), undefined);
  });

  test("SERVER_ADDRESS_ALLOW and SERVER_ADDRESS_DENY are validated CIDR lists", () => {
    const config = loadConfig({ SERVER_ADDRESS_ALLOW: " 10.0.0.0/8, 2001:db8::/32 ,203.0.113.5", SERVER_ADDRESS_DENY: "" });
    assert.deepEqual(
      config.SERVER_ADDRESS_ALLOW.map((c) => c.text),
      ["10.0.0.0/8", "2001:db8::/32", "203.0.113.5"],
    );
    assert.deepEqual(config.SERVER_ADDRESS_DENY, []);
    assert.deepEqual(loadConfig({}).SERVER_ADDRESS_ALLOW, []);
    for (const bad of ["10.0.0.0/33", "nonsense", "10.0.0.0/8/1", "::/129", "10.0.0.0/x"]) {
      assert.throws(
        () => loadConfig({ SERVER_ADDRESS_DENY: bad }),
        (e: unknown) => e instanceof ConfigError && /SERVER_ADDRESS_DENY/.test(e.message),
        bad,
      );
    }
  });
});

describe("CreateServer and UpdateServer refuse addresses the policy refuses", () => {
  let api: TestApi;
  let alice: ReturnType<TestApi["clients"]>;
  let aliceId: string;
  let clusterId: string;
  const rows = async () => (await api.database.db.select({ n: count() }).from(servers).where(eq(servers.ownerId, aliceId)))[0]?.n ?? 0;

  before(async () => {
    api = await startTestApi();
    const owner = await api.newOwner();
    aliceId = owner.ownerId;
    alice = api.clients(owner.token);
    clusterId = (await alice.clusters.createCluster({ name: "policy" })).cluster!.id;
  });
  after(async () => {
    await api?.close();
  });

  test("each refused class answers InvalidArgument on host; nothing is written", async () => {
    const existing = (await alice.servers.createServer({ clusterId, name: "ok", host: "198.51.100.20", credential })).server!;
    const before = await rows();
    for (const [host, why] of refusedHosts) {
      const created = await expectCode(alice.servers.createServer({ clusterId, name: "bad", host, credential }), Code.InvalidArgument);
      assert.match(created.rawMessage, /^host: refused by policy: /, host);
      assert.match(created.rawMessage, why, host);
      const updated = await expectCode(alice.servers.updateServer({ id: existing.id, host }), Code.InvalidArgument);
      assert.match(updated.rawMessage, /^host: refused by policy: /, host);
    }
    assert.equal(await rows(), before, "no server row written");
    assert.equal((await alice.servers.getServer({ id: existing.id })).server?.host, "198.51.100.20", "the update changed nothing");
  });

  test("numeric address spellings a resolver reads as IPv4 are not names", async () => {
    for (const host of ["127.1", "0x7f.0.0.1", "2130706433", "0177.0.0.1", "0x7f000001"]) {
      await expectCode(alice.servers.createServer({ clusterId, name: "bad", host, credential }), Code.InvalidArgument, /^host:/);
    }
  });

  test("an operator's deny list applies at the door", async () => {
    const strict = await startTestApi({ networkPolicy: createNetworkPolicy({ deny: cidrs("10.0.0.0/8") }) });
    try {
      const client = strict.clients((await strict.newOwner()).token);
      const cluster = (await client.clusters.createCluster({ name: "strict" })).cluster!;
      await expectCode(
        client.servers.createServer({ clusterId: cluster.id, name: "ten", host: "10.1.2.3", credential }),
        Code.InvalidArgument,
        /^host: refused by policy: 10\.1\.2\.3 is in SERVER_ADDRESS_DENY \(10\.0\.0\.0\/8\)/,
      );
      assert.ok((await client.servers.createServer({ clusterId: cluster.id, name: "elsewhere", host: "192.168.7.7", credential })).server);
    } finally {
      await strict.close();
    }
  });
});

/**
 * An interface without carrier (here a veth whose peer is down; an idle docker0 or a bridge
 * without ports elsewhere): Node's interface list leaves it out, Linux still delivers to its
 * addresses. One pair per test-host tag, so checkouts running this file at once do not collide.
 */
describe("this machine's addresses come from the kernel, interfaces without carrier included", () => {
  const tag = process.env.AXION_TESTHOST_TAG ?? "";
  const link = `axnc${tag}a`;
  const peer = `axnc${tag}b`;
  const third = 100 + ([...tag].reduce((sum, c) => sum + c.charCodeAt(0), 0) % 150);
  const v4 = `198.18.${third}.1`;
  const v6 = `fd00:a${third}::1`;
  let api: TestApi;
  let alice: ReturnType<TestApi["clients"]>;
  let clusterId: string;
  const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });

  before(async () => {
    execFileSync("sh", ["-c", `ip link del ${link} 2>/dev/null || true`]);
    ip("link", "add", link, "type", "veth", "peer", "name", peer);
    ip("addr", "add", `${v4}/24`, "dev", link);
    ip("-6", "addr", "add", `${v6}/64`, "dev", link, "nodad");
    ip("link", "set", link, "up");
    api = await startTestApi();
    alice = api.clients((await api.newOwner()).token);
    clusterId = (await alice.clusters.createCluster({ name: "carrier" })).cluster!.id;
  });
  after(async () => {
    await api?.close();
    execFileSync("sh", ["-c", `ip link del ${link} 2>/dev/null || true`]);
  });

  test("the kernel's tables are read as they are written: local routes with their prefix, every IPv6 address", () => {
    const fibTrie = [
      "Main:",
      "  +-- 0.0.0.0/0 3 0 5",
      "     |-- 0.0.0.0",
      "        /0 universe UNICAST",
      "     |-- 198.18.7.0",
      "        /24 link UNICAST",
      "Local:",
      "  +-- 0.0.0.0/0 3 0 5",
      "     |-- 10.0.0.0",
      "        /8 host LOCAL",
      "     |-- 198.18.7.1",
      "        /32 host LOCAL",
      "     |-- 198.18.7.255",
      "        /32 link BROADCAST",
    ].join("\n");
    assert.deepEqual(parseFibTrieLocal(fibTrie), ["10.0.0.0/8", "198.18.7.1/32"]);
    const ifInet6 =
      "fd00000000000000000000000000a001 07 40 00 82    axnc0a\nnot a line\n00000000000000000000000000000001 01 80 10 80       lo\n";
    assert.deepEqual(parseIfInet6(ifInet6), ["fd00:0000:0000:0000:0000:0000:0000:a001/128", "0000:0000:0000:0000:0000:0000:0000:0001/128"]);
    const policy = createNetworkPolicy({ ownAddresses: () => [...parseFibTrieLocal(fibTrie), ...parseIfInet6(ifInet6)] });
    assert.match(policy.addressProblem("10.200.3.4") ?? "", /own machine/, "a range routed locally (AnyIP) is this machine's");
    assert.match(policy.addressProblem("fd00::a001") ?? "", /own machine/);
    assert.equal(policy.addressProblem("198.18.7.2"), undefined, "a neighbour on the link is not");
  });

  test("a server at the address of an interface without carrier is refused", async () => {
    const listed = Object.values(networkInterfaces())
      .flat()
      .map((i) => i?.address);
    assert.ok(!listed.includes(v4), "Node's interface list leaves the interface out (no carrier)");
    for (const host of [v4, v6, `::ffff:${v4}`]) {
      await expectCode(
        alice.servers.createServer({ clusterId, name: "self", host, credential }),
        Code.InvalidArgument,
        /^host: refused by policy: .* is an address of this service's own machine/,
      );
    }
  });
});

describe("the worker checks the address again after name resolution", { timeout: 5 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let alice: ReturnType<TestApi["clients"]>;
  let listener: Server;
  let listenerPort: number;
  let connections = 0;
  let n = 0;

  /**
   * A server registered at an allowed address, then moved in the database (a rebinding, or an
   * allow list that changed since) onto the loopback listener. Each is another owner's: a
   * host:port pair is unique per owner.
   */
  const serverAt = async (host: string) => {
    alice = harness.api.clients((await harness.api.newOwner()).token);
    const clusterId = (await alice.clusters.createCluster({ name: "rebinding" })).cluster!.id;
    const server = (await alice.servers.createServer({ clusterId, name: `moved-${++n}`, host: `198.51.100.${n}`, credential })).server!;
    await harness.api.database.db.update(servers).set({ host, sshPort: listenerPort }).where(eq(servers.id, server.id));
    return server;
  };

  before(async () => {
    listener = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    listenerPort = (listener.address() as { port: number }).port;
    harness = await startProvisioningHarness({ sshConnectTimeoutMs: 3000 });
  });
  after(async () => {
    await harness?.close();
    await new Promise((resolve) => listener?.close(resolve));
  });

  test("TestServerConnection to a name resolving to loopback answers REFUSED_BY_POLICY; no TCP connection is opened", async () => {
    for (const host of ["localhost", hostname(), "127.0.0.1", "::ffff:127.0.0.1", ...(loopbackAlias ? [loopbackAlias] : [])]) {
      const server = await serverAt(host);
      const answer = await alice.servers.testServerConnection({ id: server.id });
      assert.equal(ConnectionOutcome[answer.outcome], ConnectionOutcome[ConnectionOutcome.REFUSED_BY_POLICY], `${host}: ${answer.message}`);
      assert.match(answer.message, /refused by policy: /);
      if (host === loopbackAlias) assert.match(answer.message, new RegExp(`${host} resolves to 127\\.0\\.0\\.1, a loopback address`));
      assert.notEqual((await alice.servers.getServer({ id: server.id })).server?.status, ServerStatus.UNREACHABLE);
    }
    assert.equal(connections, 0, "the worker never connected to the loopback listener");
  });

  test("a refused target fails a bootstrap at once, without retries", async () => {
    const server = await serverAt("localhost");
    const op = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.equal(op.status, OperationStatus.FAILED);
    assert.match(op.error, /refused by policy/);
    const history = await harness.client.workflow.getHandle(`bootstrap/${server.id}`).fetchHistory();
    const attempts = (history.events ?? []).flatMap((e) =>
      e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt ?? 1] : [],
    );
    assert.ok(attempts.length > 0, "an SSH activity ran");
    assert.deepEqual(
      attempts.filter((a) => a > 1),
      [],
      "no activity was retried",
    );
    assert.equal(connections, 0, "the worker never connected to the loopback listener");
  });
});
