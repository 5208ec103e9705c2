// test lane: fast
import assert from "node:assert/strict";
import { type AddressInfo, createConnection, createServer, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { SshSessionPool } from "../activities/ssh/pool.js";
import { openSsh } from "../activities/ssh/session.js";
import { sh } from "../activities/ssh/shell.js";
import { type Cidr, createNetworkPolicy, parseCidr } from "../core/security/network-policy.js";
import { ed25519KeyPair } from "./support/keys.js";
import { startSilentHost } from "./support/silent-host.js";
import { startTestSshServer, type TestSshServer } from "./support/ssh-server.js";

/** The test SSH server listens on loopback, which the built-in policy refuses. */
const loopbackToo = createNetworkPolicy({ allow: ["127.0.0.1/32", "127.0.0.2/32"].map((c) => parseCidr(c) as Cidr) });

/** A TCP hop in front of the SSH server whose connections can be reset, as a host that reboots or vanishes does. */
async function startResettableHop(targetPort: number) {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    resetAll: () => {
      for (const s of sockets) s.resetAndDestroy();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("SSH sessions", () => {
  const keys = ed25519KeyPair();
  let sshd: TestSshServer;
  before(async () => {
    sshd = await startTestSshServer(keys.publicKey);
  });
  after(async () => {
    await sshd?.close();
  });

  test("a pooled idle session whose host resets the connection ends that session, not the worker process", async () => {
    const hop = await startResettableHop(sshd.port);
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    const pool = new SshSessionPool(60_000);
    try {
      const session = await openSsh(
        { host: "127.0.0.1", port: hop.port, username: "root" },
        { kind: "private_key", privateKey: keys.privateKey },
        { networkPolicy: loopbackToo, connectTimeoutMs: 5000 },
      );
      assert.equal((await session.run(sh`true`, { root: false })).stdout, "ok");
      pool.give("server-1", session);
      hop.resetAll();
      for (let i = 0; i < 50 && session.isOpen(); i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(session.isOpen(), false, "the reset session no longer counts as open");
      assert.equal(pool.take("server-1"), undefined, "the pool hands out no dead session");
      assert.deepEqual(uncaught, [], "no error escaped to the process");
    } finally {
      process.off("uncaughtException", onUncaught);
      pool.closeAll();
      await hop.close();
    }
  });

  test("cancelling a connection to a host that never sends its SSH banner closes the socket at once, not at the connect timeout", {
    timeout: 30_000,
  }, async () => {
    const silent = await startSilentHost();
    const closed = new Promise<void>((resolve) => silent.onClose(resolve));
    const cancel = new AbortController();
    const reason = new Error("cancelled by the operator");
    try {
      const opening = openSsh(
        { host: silent.host, port: silent.port, username: "root" },
        { kind: "private_key", privateKey: keys.privateKey },
        { networkPolicy: loopbackToo, connectTimeoutMs: 120_000, signal: cancel.signal },
      );
      while (silent.accepted() === 0) await new Promise((r) => setTimeout(r, 20));
      const cancelledAt = Date.now();
      cancel.abort(reason);
      await assert.rejects(opening, (error) => error === reason);
      await closed;
      assert.ok(Date.now() - cancelledAt < 10_000, "ended by the cancellation, long before the 120 s connect timeout");
    } finally {
      await silent.close();
    }
  });

  test("a connection cancelled before it starts (while its name resolves) never connects", { timeout: 30_000 }, async () => {
    const silent = await startSilentHost();
    const reason = new Error("cancelled by the operator");
    try {
      await assert.rejects(
        openSsh(
          { host: silent.host, port: silent.port, username: "root" },
          { kind: "private_key", privateKey: keys.privateKey },
          { networkPolicy: loopbackToo, connectTimeoutMs: 120_000, signal: AbortSignal.abort(reason) },
        ),
        (error) => error === reason,
      );
      assert.equal(silent.accepted(), 0, "no connection was made");
    } finally {
      await silent.close();
    }
  });
});
