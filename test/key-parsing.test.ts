import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { ApplicationFailure } from "@temporalio/common";
import { count, eq } from "drizzle-orm";
import ssh2 from "ssh2";
import { withServerSession } from "../activities/server-access.js";
import { sh } from "../activities/ssh/shell.js";
import { AppError } from "../core/kernel/errors.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { KeyParsingPool } from "../core/security/key-parsing.js";
import { type Cidr, createNetworkPolicy, parseCidr } from "../core/security/network-policy.js";
import { serverCredentials, servers } from "../db/schema.js";
import { startTestApi, type TestApi, testCredentialsKey } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { ed25519KeyPair } from "./support/keys.js";
import { startTestSshServer, type TestSshServer } from "./support/ssh-server.js";

const PASSPHRASE = "correct horse";
// test lane: alone. It bounds latency (200 ms), so scripts/test.sh runs it after the other files, on a quiet machine.

/** At the cap (64 rounds): allowed, and slow enough (seconds) to be seen if it ran on the event loop. */
const atCap = ed25519KeyPair(PASSPHRASE, 64);
const plain = ed25519KeyPair();

/** Rewrites an openssh-key-v1 file's header fields (the header is not authenticated: any value can be sent). */
function rewriteKeyFile(key: string, edit: { rounds?: number; cipher?: string; keys?: number; salt?: Buffer }): string {
  const body = Buffer.from(key.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
  let pos = 15;
  const readString = () => {
    const length = body.readUInt32BE(pos);
    const value = body.subarray(pos + 4, pos + 4 + length);
    pos += 4 + length;
    return value;
  };
  const str = (b: Buffer | string) => {
    const v = typeof b === "string" ? Buffer.from(b) : b;
    const l = Buffer.alloc(4);
    l.writeUInt32BE(v.length);
    return Buffer.concat([l, v]);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const cipher = readString();
  const kdf = readString();
  const options = readString();
  const salt = options.subarray(4, 4 + options.readUInt32BE(0));
  const rounds = options.readUInt32BE(4 + salt.length);
  const nkeys = body.readUInt32BE(pos);
  const rest = body.subarray(pos + 4);
  const rebuilt = Buffer.concat([
    body.subarray(0, 15),
    str(edit.cipher ?? cipher),
    str(kdf),
    str(Buffer.concat([str(edit.salt ?? salt), u32(edit.rounds ?? rounds)])),
    u32(edit.keys ?? nkeys),
    rest,
  ]);
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${rebuilt.toString("base64").replace(/.{70}/g, "$&\n")}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/** The test SSH server listens on loopback, which the built-in policy refuses: this one admits 127.0.0.1 too. */
const loopbackToo = createNetworkPolicy({ allow: ["127.0.0.1/32", "0.0.0.0/0", "::/0"].map((c) => parseCidr(c) as Cidr) });

const keyCredential = (key: string, passphrase?: string) => ({ method: { case: "privateKey" as const, value: { key, passphrase } } });

describe("private keys are parsed off the event loop, bounded", { timeout: 5 * 60_000 }, () => {
  let api: TestApi;
  let alice: ReturnType<TestApi["clients"]>;
  let aliceId: string;
  let clusterId: string;
  let n = 0;
  const serverRows = async () =>
    (await api.database.db.select({ n: count() }).from(servers).where(eq(servers.ownerId, aliceId)))[0]?.n ?? 0;
  const create = (credential: ReturnType<typeof keyCredential>, host = `203.0.113.${++n}`) =>
    alice.servers.createServer({ clusterId, name: `k-${n}-${Math.random().toString(36).slice(2, 8)}`, host, credential });

  before(async () => {
    api = await startTestApi({ networkPolicy: loopbackToo });
    const owner = await api.newOwner();
    aliceId = owner.ownerId;
    alice = api.clients(owner.token);
    clusterId = (await alice.clusters.createCluster({ name: "keys" })).cluster!.id;
  });
  after(async () => {
    await api?.close();
  });

  test("/healthz answers within 200 ms while a key at the KDF cap is being parsed", async () => {
    let done = false;
    const creating = create(keyCredential(atCap.privateKey, PASSPHRASE)).finally(() => {
      done = true;
    });
    const latencies: number[] = [];
    while (!done) {
      const started = performance.now();
      const res = await fetch(`${api.baseUrl}/healthz`);
      await res.text();
      latencies.push(performance.now() - started);
      assert.equal(res.status, 200);
      await new Promise((r) => setTimeout(r, 20));
    }
    const created = (await creating).server!;
    assert.ok(created.id, "a key at the cap is accepted");
    const worst = Math.max(...latencies);
    assert.ok(worst < 200, `every /healthz answered within 200 ms while the key was parsed (worst ${worst.toFixed(0)} ms)`);
    assert.ok(latencies.length >= 5, `the parse was watched (${latencies.length} health checks)`);
  });

  test("a key declaring 1,000 (or 4 billion) KDF rounds is refused at once, naming the field; nothing is written", async () => {
    const before = await serverRows();
    for (const rounds of [1000, 0xffffffff]) {
      const hostile = rewriteKeyFile(atCap.privateKey, { rounds });
      const started = performance.now();
      await expectCode(
        create(keyCredential(hostile, PASSPHRASE)),
        Code.InvalidArgument,
        new RegExp(`^credential\\.private_key\\.key: declares ${rounds} bcrypt KDF rounds; at most 64`),
      );
      assert.ok(performance.now() - started < 2000, "refused before any KDF work");
    }
    assert.equal(await serverRows(), before, "no server row written");

    // An update with such a key leaves the stored credential as it was.
    const server = (await create(keyCredential(plain.privateKey))).server!;
    const [stored] = await api.database.db.select().from(serverCredentials).where(eq(serverCredentials.serverId, server.id));
    await expectCode(
      alice.servers.updateServer({
        id: server.id,
        credential: keyCredential(rewriteKeyFile(atCap.privateKey, { rounds: 1000 }), PASSPHRASE),
      }),
      Code.InvalidArgument,
      /^credential\.private_key\.key: declares 1000 bcrypt KDF rounds/,
    );
    const [after] = await api.database.db.select().from(serverCredentials).where(eq(serverCredentials.serverId, server.id));
    assert.equal(after?.envelope, stored?.envelope, "the credential is unchanged");
  });

  test("absurd key file structures are refused with InvalidArgument on the key", async () => {
    const before = await serverRows();
    const cases: [string, string, RegExp][] = [
      ["two keys in one file", rewriteKeyFile(atCap.privateKey, { keys: 2 }), /holds 2 keys; exactly one/],
      ["4 billion keys", rewriteKeyFile(atCap.privateKey, { keys: 0xffffffff }), /holds 4294967295 keys/],
      ["an unknown cipher", rewriteKeyFile(atCap.privateKey, { cipher: "rot13" }), /is encrypted with "rot13"/],
      ["a 4 KiB salt", rewriteKeyFile(atCap.privateKey, { salt: Buffer.alloc(4096) }), /is not a valid private key/],
      ["a truncated file", atCap.privateKey.slice(0, 200), /is not a valid private key/],
    ];
    for (const [what, key, pattern] of cases) {
      const error = await expectCode(create(keyCredential(key, PASSPHRASE)), Code.InvalidArgument);
      assert.match(error.rawMessage, new RegExp(`^credential\\.private_key\\.key: ${pattern.source}`), what);
    }
    assert.equal(await serverRows(), before, "no server row written");
  });

  test("a parse past its deadline answers InvalidArgument 'took too long to parse'; the pool keeps working", async () => {
    const slow = new KeyParsingPool({ deadlineMs: 50 });
    const strict = await startTestApi({ keyParsing: slow });
    try {
      const client = strict.clients((await strict.newOwner()).token);
      const cluster = (await client.clusters.createCluster({ name: "strict" })).cluster!;
      await expectCode(
        client.servers.createServer({
          clusterId: cluster.id,
          name: "slow",
          host: "203.0.113.200",
          credential: keyCredential(atCap.privateKey, PASSPHRASE),
        }),
        Code.InvalidArgument,
        /^credential\.private_key\.key: took too long to parse/,
      );
      const ok = await client.servers.createServer({
        clusterId: cluster.id,
        name: "fast",
        host: "203.0.113.201",
        credential: keyCredential(plain.privateKey),
      });
      assert.ok(ok.server?.id, "the next key is parsed by a fresh thread");
    } finally {
      await strict.close();
      await slow.close();
    }
  });

  describe("in the worker", () => {
    let sshd: TestSshServer;
    /** A server at the test SSH server whose stored key is the one at the cap. */
    let serverId: string;
    const deps = () => ({
      db: api.database.db,
      cipher: createCredentialsCipher(testCredentialsKey),
      adminUser: "axion",
      sshConnectTimeoutMs: 10_000,
      networkPolicy: loopbackToo,
    });

    before(async () => {
      sshd = await startTestSshServer(atCap.publicKey);
    });
    after(async () => {
      await sshd?.close();
    });

    test("an encrypted key at the cap logs in while the worker's event loop stays responsive", async () => {
      const server = (await create(keyCredential(atCap.privateKey, PASSPHRASE), "127.0.0.1")).server!;
      await api.database.db.update(servers).set({ sshPort: sshd.port }).where(eq(servers.id, server.id));
      serverId = server.id;
      let last = performance.now();
      let worstGap = 0;
      const ticker = setInterval(() => {
        const now = performance.now();
        worstGap = Math.max(worstGap, now - last);
        last = now;
      }, 10);
      try {
        const out = await withServerSession(deps(), server.id, async (session) => (await session.run(sh`true`, { root: false })).stdout);
        assert.equal(out, "ok");
      } finally {
        clearInterval(ticker);
      }
      assert.ok(worstGap < 200, `the event loop never stalled for 200 ms (worst ${worstGap.toFixed(0)} ms)`);
    });

    test("a stored key past the parse deadline fails as a typed non-retryable failure, before any connection", async () => {
      const slow = new KeyParsingPool({ deadlineMs: 50 });
      const connectionsBefore = sshd.connections;
      try {
        await assert.rejects(
          withServerSession({ ...deps(), keyParsing: slow }, serverId, async () => "connected"),
          (error: unknown) => {
            assert.ok(error instanceof ApplicationFailure);
            assert.equal(error.type, "SshKeyUnusable");
            assert.equal(error.nonRetryable, true);
            assert.match(error.message, /took too long to parse/);
            return true;
          },
        );
      } finally {
        await slow.close();
      }
      assert.equal(sshd.connections, connectionsBefore, "no SSH connection was attempted");
    });
  });
});

test("ssh2 is handed an unencrypted key: the same key, no KDF left", async () => {
  const pool = new KeyParsingPool();
  try {
    const prepared = await pool.prepare({ ownerId: "owner", key: atCap.privateKey, passphrase: PASSPHRASE });
    assert.ok(prepared.ok, prepared.ok ? "" : prepared.problem);
    assert.equal(prepared.passphrase, undefined);
    assert.match(prepared.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    const started = performance.now();
    const parsed = ssh2.utils.parseKey(prepared.privateKey);
    assert.ok(performance.now() - started < 100, "parsing the handed key needs no KDF");
    assert.ok(!(parsed instanceof Error));
    const key = Array.isArray(parsed) ? parsed[0]! : parsed;
    assert.equal(`${key.type} ${key.getPublicSSH().toString("base64")}`, atCap.publicKey.trim().split(" ").slice(0, 2).join(" "));
    const wrong = await pool.prepare({ ownerId: "owner", key: atCap.privateKey, passphrase: "wrong" });
    assert.deepEqual(wrong, { ok: false, problem: "is encrypted: a passphrase is required or the given one is wrong" });
  } finally {
    await pool.close();
  }
});

test("owners are served in turn: an owner's keys past its share are refused; a newcomer's key goes ahead of a busy owner's queue", async () => {
  const pool = new KeyParsingPool({ threads: 1, maxPerOwner: 4 });
  const order: string[] = [];
  const parse = (ownerId: string, label: string) =>
    pool.prepare({ ownerId, key: plain.privateKey }).then((prepared) => {
      assert.ok(prepared.ok);
      order.push(label);
    });
  try {
    const a = [1, 2, 3, 4].map((i) => parse("owner-a", `A${i}`));
    await assert.rejects(pool.prepare({ ownerId: "owner-a", key: plain.privateKey }), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.equal(error.kind, "resource_exhausted");
      assert.match(error.message, /at most 4 per owner \(SSH_KEY_PARSE_PER_OWNER\)/);
      return true;
    });
    // A workflow's activity is not refused: it waits in its owner's queue.
    const queued = pool.prepare({ ownerId: "owner-a", key: plain.privateKey, overShare: "queue" }).then(() => order.push("A5"));
    const others = [parse("owner-b", "B1"), parse("owner-c", "C1")];
    await Promise.all([...a, ...others, queued]);
    assert.deepEqual(order, ["A1", "B1", "C1", "A2", "A3", "A4", "A5"]);
  } finally {
    await pool.close();
  }
});
