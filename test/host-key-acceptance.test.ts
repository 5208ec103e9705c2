import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { eq } from "drizzle-orm";
import ssh2 from "ssh2";
import { createNameResolver } from "../core/security/name-resolution.js";
import { type Cidr, createNetworkPolicy, parseCidr } from "../core/security/network-policy.js";
import { servers } from "../db/schema.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { startTestDnsServer, type TestDnsServer } from "./support/dns-server.js";
import { ed25519KeyPair } from "./support/keys.js";
import { buildImage, downHosts, type Fleet, hostExec, type TestHost, upHosts } from "./support/testhosts.js";

const prefix = "hkaccept";
const PASSPHRASE = "correct horse";
/** At the KDF cap (64 rounds): hundreds of milliseconds, seen at once if it ran on the API's event loop. */
const atCap = ed25519KeyPair(PASSPHRASE, 64);
const stranger = ed25519KeyPair();

const keyCredential = (key: string, passphrase?: string) => ({ method: { case: "privateKey" as const, value: { key, passphrase } } });
const wrongKey = `SHA256:${"A".repeat(43)}`;

/**
 * AcceptHostKey logs in as the server's user (root here) to check a host key. It goes through
 * the same network policy on the resolved address as every other connecting path, decrypts the
 * stored key off the event loop, is rate limited per owner and answers every failure to reach
 * or verify the host the same way.
 */
describe("AcceptHostKey", { timeout: 10 * 60_000 }, () => {
  let fleet: Fleet;
  let host: TestHost;
  /** The built-in policy: the test host's address is allowed. */
  let api: TestApi;
  /** The same database behind an API whose operator denies the test host's address. */
  let strict: TestApi;
  let n = 0;
  /** Answers NAME with the test host's address, for both APIs' resolvers. */
  let dns: TestDnsServer;
  const NAME = "rebuilt.fleet.example";

  /** A new owner: `client` on the API given, `lenient` on the one that may reach the host, `create` a server at the host. */
  const newOwner = async (on: TestApi = api) => {
    const { token } = await api.newOwner();
    const client = on.clients(token);
    const lenient = api.clients(token);
    const clusterId = (await lenient.clusters.createCluster({ name: "hk" })).cluster!.id;
    const create = async (credential = keyCredential(fleet.privateKey), port = 22, at = host.ip) =>
      (await lenient.servers.createServer({ clusterId, name: `hk-${++n}`, host: at, sshPort: port, sshUser: "root", credential })).server!;
    /** The key the host presents, as named by AcceptHostKey's refusal of another (through the API that may reach it). */
    const presentedKey = async (id: string): Promise<string> => {
      const refused = await expectCode(lenient.servers.acceptHostKey({ id, expectedFingerprint: wrongKey }), Code.FailedPrecondition);
      const seen = /presents key (SHA256:\S{43})/.exec(refused.rawMessage)?.[1];
      assert.ok(seen, refused.rawMessage);
      return seen;
    };
    return { client, create, presentedKey };
  };

  before(async () => {
    buildImage();
    downHosts(prefix);
    fleet = upHosts(prefix, 1, "fresh");
    host = fleet.hosts[0]!;
    hostExec(host.name, `echo '${atCap.publicKey.trim()}' >> /root/.ssh/authorized_keys`);
    dns = await startTestDnsServer({ [NAME]: [host.ip] }, () => false);
    const resolver = createNameResolver({ servers: [dns.address] });
    api = await startTestApi({
      networkPolicy: createNetworkPolicy({ resolver }),
      sshConnectTimeoutMs: 5000,
      limits: { connectionTests: { burst: 100, perMinute: 100 } },
    });
    strict = await startTestApi({
      database: api.database,
      networkPolicy: createNetworkPolicy({ deny: [parseCidr(`${host.ip}/32`) as Cidr], resolver }),
      sshConnectTimeoutMs: 5000,
      limits: { connectionTests: { burst: 3, perMinute: 1 } },
    });
  });

  after(async () => {
    await strict?.close().catch(() => {});
    // Both share one database: the first close ends it.
    await api?.close().catch(() => {});
    await dns?.close();
    downHosts(prefix);
  });

  test("an address in SERVER_ADDRESS_DENY, or a name resolving into it, is refused by policy: no login, nothing pinned", async () => {
    const { client, create, presentedKey } = await newOwner(strict);
    const ip = host.ip.replaceAll(".", "\\.");
    for (const [at, why] of [
      [host.ip, new RegExp(`^host: refused by policy: ${ip} is in SERVER_ADDRESS_DENY`)],
      [NAME, new RegExp(`^host: refused by policy: ${NAME.replaceAll(".", "\\.")} resolves to ${ip}, in SERVER_ADDRESS_DENY`)],
    ] as const) {
      const server = await create(keyCredential(fleet.privateKey), 22, at);
      // Where it is allowed, the host answers at that address or name.
      const key = await presentedKey(server.id);
      const refused = await expectCode(client.servers.acceptHostKey({ id: server.id, expectedFingerprint: key }), Code.FailedPrecondition);
      assert.match(refused.rawMessage, why);
      const [row] = await api.database.db.select().from(servers).where(eq(servers.id, server.id));
      assert.equal(row?.hostKeyFingerprint ?? null, null, `${at}: no host key was pinned`);
    }
  });

  test("an encrypted stored key is decrypted off the API's event loop", async () => {
    const { client, create, presentedKey } = await newOwner();
    const server = await create(keyCredential(atCap.privateKey, PASSPHRASE));
    const key = await presentedKey(server.id);
    // One decryption of this key on this event loop, now, on this machine as loaded as it is: the stall it would cause.
    const kdfStarted = performance.now();
    assert.ok(!(ssh2.utils.parseKey(atCap.privateKey, PASSPHRASE) instanceof Error));
    const kdfMs = performance.now() - kdfStarted;
    let last = performance.now();
    let worstGap = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
    }, 10);
    try {
      const accepted = (await client.servers.acceptHostKey({ id: server.id, expectedFingerprint: key })).server!;
      assert.equal(accepted.hostKeyFingerprint, key, "the key was accepted: the login with the decrypted key worked");
    } finally {
      clearInterval(ticker);
    }
    assert.ok(
      worstGap < kdfMs / 2,
      `the API's event loop never stalled for half a decryption (${(kdfMs / 2).toFixed(0)} ms; worst ${worstGap.toFixed(0)} ms)`,
    );
  });

  test("is rate limited per owner, with connection tests; another owner is not affected", async () => {
    const alice = await newOwner(strict);
    const server = await alice.create();
    // The strict API's bucket: 3 at once. Its answers are refusals by policy, made before any connection.
    for (let i = 0; i < 3; i++) {
      await expectCode(alice.client.servers.acceptHostKey({ id: server.id, expectedFingerprint: wrongKey }), Code.FailedPrecondition);
    }
    await expectCode(
      alice.client.servers.acceptHostKey({ id: server.id, expectedFingerprint: wrongKey }),
      Code.ResourceExhausted,
      /rate limit of connection tests.*per owner/,
    );
    const bob = await newOwner(strict);
    const bobs = await bob.create();
    await expectCode(bob.client.servers.acceptHostKey({ id: bobs.id, expectedFingerprint: wrongKey }), Code.FailedPrecondition, /policy/);
  });

  test("a closed port, a port that does not speak SSH and a refused login get one and the same answer", async () => {
    const { client, create, presentedKey } = await newOwner();
    // The key the host does present: a login is then refused only for its credential.
    const refusedLogin = await create(keyCredential(stranger.privateKey));
    const hostKey = await presentedKey(refusedLogin.id);
    // Something on the host listens on 2222 and does not speak SSH (a socket unit: listening once systemd-run returns).
    hostExec(
      host.name,
      `systemd-run --unit=hk-not-ssh --socket-property=ListenStream=2222 python3 -c 'import socket
s = socket.socket(fileno=3)
while True:
    c, _ = s.accept(); c.sendall(b"HTTP/1.0 400 not ssh\\r\\n\\r\\n"); c.close()'`,
    );
    const cases = [
      { what: "a closed port", server: await create(keyCredential(fleet.privateKey), 1) },
      { what: "a refused login", server: refusedLogin },
      { what: "a port that does not speak SSH", server: await create(keyCredential(fleet.privateKey), 2222) },
    ];
    const answers: string[] = [];
    for (const { what, server } of cases) {
      const answer = await expectCode(client.servers.acceptHostKey({ id: server.id, expectedFingerprint: hostKey }), Code.Unavailable);
      answers.push(answer.rawMessage);
      assert.doesNotMatch(answer.rawMessage, /ECONNREFUSED|ETIMEDOUT|timed out|authentication|handshake|refused/i, what);
    }
    assert.deepEqual(new Set(answers).size, 1, `one answer for all: ${answers.join(" | ")}`);
    assert.match(answers[0]!, /could not reach or verify the host/);
  });
});
