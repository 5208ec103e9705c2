// test lane: fast
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../core/kernel/config.js";
import { createNameResolver, type NameResolver, nameResolverFromConfig } from "../core/security/name-resolution.js";
import { type Cidr, createNetworkPolicy, parseCidr, RefusedByPolicy, resolveAllowedAddress } from "../core/security/network-policy.js";
import { startTestDnsServer, type TestDnsServer } from "./support/dns-server.js";

const TIMEOUT_MS = 1500;
const codeOf = (error: unknown) => (error as { code?: string }).code;

describe("names are resolved through one resolver with bounded concurrency, real timeouts and fair shares", () => {
  let dns: TestDnsServer;
  let resolver: NameResolver;

  before(async () => {
    dns = await startTestDnsServer(
      {
        "good.example": ["203.0.113.10", "2001:db8::10"],
        "other.example": ["203.0.113.11"],
        "denied.example": ["10.1.2.3"],
        "metadata.example": ["198.51.100.7", "169.254.169.254"],
        "web1.fleet.example": ["203.0.113.51"],
      },
      (name) => name.endsWith(".slow.example"),
    );
    resolver = nameResolverFromConfig(
      loadConfig({
        DNS_SERVERS: dns.address,
        DNS_TIMEOUT_MS: String(TIMEOUT_MS),
        DNS_LOOKUPS_IN_FLIGHT: "8",
        DNS_LOOKUPS_PER_OWNER: "4",
      }),
    );
  });
  after(async () => {
    await dns?.close();
  });

  test("a name is answered by the configured DNS server, IPv4 first", async () => {
    assert.deepEqual(await resolver.resolve("good.example", { owner: "b" }), [
      { address: "203.0.113.10", family: 4 },
      { address: "2001:db8::10", family: 6 },
    ]);
    await assert.rejects(resolver.resolve("missing.example"), (e: unknown) => codeOf(e) === "ENOTFOUND");
  });

  test("while one owner's names hang, another owner's lookup is answered first; the hanging ones fail within the timeout", async () => {
    const started = performance.now();
    const ended: number[] = [];
    const flood = Array.from({ length: 20 }, (_, i) =>
      resolver.resolve(`n${i}.slow.example`, { owner: "a" }).then(
        () => assert.fail("a name nobody answers resolved"),
        (error: unknown) => {
          ended.push(performance.now() - started);
          return codeOf(error);
        },
      ),
    );
    const firstFailure = Promise.race(flood).then(() => "a flood lookup failed");
    const other = resolver.resolve("other.example", { owner: "b" }).then((answer) => answer);
    const first = await Promise.race([other.then(() => "the other owner's lookup answered"), firstFailure]);
    assert.equal(first, "the other owner's lookup answered", "nothing of the flood ended before it");
    assert.deepEqual(await other, [{ address: "203.0.113.11", family: 4 }]);

    const codes = await Promise.all(flood);
    assert.deepEqual(new Set(codes), new Set(["ETIMEOUT"]), "every hanging lookup failed as a timeout");
    const slowest = Math.max(...ended);
    assert.ok(
      slowest < TIMEOUT_MS + 1000,
      `all 20 ended within the timeout (${TIMEOUT_MS} ms) and a second (slowest ${slowest.toFixed(0)} ms)`,
    );
    // The slots of the hanging lookups are free again: the same owner is answered at once.
    assert.deepEqual(await resolver.resolve("other.example", { owner: "a" }), [{ address: "203.0.113.11", family: 4 }]);
    const asked = new Set(dns.queries.filter((q) => q.endsWith(".slow.example")));
    assert.ok(asked.size <= 8, `at most the per-owner share went out at once, not all 20 (${asked.size} names asked)`);
  });

  test("when flooding owners fill every shared slot, another owner's lookup still starts at once", async () => {
    const small = nameResolverFromConfig(
      loadConfig({ DNS_SERVERS: dns.address, DNS_TIMEOUT_MS: String(TIMEOUT_MS), DNS_LOOKUPS_IN_FLIGHT: "8", DNS_LOOKUPS_PER_OWNER: "4" }),
    );
    // Three owners, four hanging lookups each: more than the 8 shared slots.
    const flood = Array.from({ length: 12 }, (_, i) => small.resolve(`s${i}.slow.example`, { owner: `flooder-${i % 3}` }).catch(codeOf));
    const first = await Promise.race([
      small.resolve("other.example", { owner: "b" }).then(() => "the other owner's lookup answered"),
      Promise.race(flood).then(() => "a flood lookup ended"),
    ]);
    assert.equal(first, "the other owner's lookup answered");
    assert.deepEqual(new Set(await Promise.all(flood)), new Set(["ETIMEOUT"]));
  });

  test("names in the hosts file are answered from it, as getaddrinfo would; DNS is not asked", async () => {
    const dir = mkdtempSync(join(tmpdir(), "axion-hosts-"));
    const hostsFile = join(dir, "hosts");
    writeFileSync(hostsFile, "# a comment\n203.0.113.44  fleet-gw.example  gw # trailing\n2001:db8::44 fleet-gw.example\n");
    const withHosts = createNameResolver({ servers: [dns.address], hostsFile, timeoutMs: TIMEOUT_MS });
    const before = dns.queries.length;
    assert.deepEqual(await withHosts.resolve("Fleet-GW.example."), [
      { address: "203.0.113.44", family: 4 },
      { address: "2001:db8::44", family: 6 },
    ]);
    assert.deepEqual(await withHosts.resolve("gw"), [{ address: "203.0.113.44", family: 4 }]);
    assert.equal(dns.queries.length, before, "no DNS query for a hosts-file name");
    // The system's own hosts file by default ("localhost" is in every one).
    assert.deepEqual(
      (await createNameResolver({ servers: [dns.address] }).resolve("localhost")).map((a) => a.address).includes("127.0.0.1"),
      true,
    );
  });

  test("a name without a dot is tried under the search domains of resolv.conf, as getaddrinfo does", async () => {
    const dir = mkdtempSync(join(tmpdir(), "axion-resolv-"));
    const resolvConf = join(dir, "resolv.conf");
    writeFileSync(resolvConf, "nameserver 192.0.2.53\nsearch other.example fleet.example\n");
    const searching = createNameResolver({ servers: [dns.address], resolvConf, timeoutMs: TIMEOUT_MS });
    assert.deepEqual(await searching.resolve("web1"), [{ address: "203.0.113.51", family: 4 }]);
    await assert.rejects(searching.resolve("web2"), (e: unknown) => codeOf(e) === "ENOTFOUND");
    await assert.rejects(searching.resolve("web1.example"), (e: unknown) => codeOf(e) === "ENOTFOUND", "a name with a dot is asked as is");
  });

  test("the policy checks every address a name resolves to through this resolver", async () => {
    const policy = createNetworkPolicy({ deny: [parseCidr("10.0.0.0/8") as Cidr], resolver });
    assert.equal(await resolveAllowedAddress(policy, "good.example", 5000, "b"), "203.0.113.10");
    await assert.rejects(
      resolveAllowedAddress(policy, "denied.example", 5000, "b"),
      (e: unknown) => e instanceof RefusedByPolicy && /denied\.example resolves to 10\.1\.2\.3, in SERVER_ADDRESS_DENY/.test(e.message),
    );
    await assert.rejects(
      resolveAllowedAddress(policy, "metadata.example", 5000, "b"),
      (e: unknown) => e instanceof RefusedByPolicy && /169\.254\.169\.254, a link-local address/.test(e.message),
    );
  });

  test("DNS_SERVERS is a validated list of addresses", () => {
    assert.deepEqual(loadConfig({ DNS_SERVERS: " 10.0.0.53, 127.0.0.1:5353 ,[2001:db8::53]:53" }).DNS_SERVERS, [
      "10.0.0.53",
      "127.0.0.1:5353",
      "[2001:db8::53]:53",
    ]);
    assert.deepEqual(loadConfig({}).DNS_SERVERS, []);
    for (const bad of ["dns.example", "10.0.0.1:99999", "[::1", "10.0.0.1/24"]) {
      assert.throws(() => loadConfig({ DNS_SERVERS: bad }), /DNS_SERVERS must be a comma-separated list of DNS server addresses/, bad);
    }
  });
});
