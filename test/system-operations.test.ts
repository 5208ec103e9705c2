import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { and, eq } from "drizzle-orm";
import { AppError } from "../core/kernel/errors.js";
import { startOperation, startSystemOperation } from "../core/operations/operations.js";
import { operations, outboxEvents } from "../db/schema.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { ed25519KeyPair } from "./support/keys.js";

const key = ed25519KeyPair();

describe("operations a system actor starts, and owners' own (PGlite)", () => {
  let api: TestApi;
  let alice: { token: string; ownerId: string };
  let bob: { token: string; ownerId: string };
  let n = 0;

  before(async () => {
    api = await startTestApi();
    alice = await api.newOwner("alice");
    bob = await api.newOwner("bob");
  });
  after(() => api?.close());

  const alicesServer = async () => {
    const client = api.clients(alice.token);
    const clusterId = (await client.clusters.createCluster({ name: `sys-${++n}` })).cluster!.id;
    return (
      await client.servers.createServer({
        clusterId,
        name: `sys-${n}`,
        host: `10.89.0.${n}`,
        sshPort: 22,
        sshUser: "root",
        credential: { method: { case: "privateKey", value: { key: key.privateKey } } },
      })
    ).server!.id;
  };

  test("an operation the fleet check starts belongs to the server's owner, who can read it, and its event names the fleet check", async () => {
    const serverId = await alicesServer();
    const op = await startSystemOperation(api.database.db, serverId, "recovery", "fleet_check");
    assert.equal(op.ownerId, alice.ownerId);
    const seen = (await api.clients(alice.token).operations.getOperation({ id: op.id })).operation;
    assert.equal(seen?.id, op.id);
    const [event] = await api.database.db
      .select()
      .from(outboxEvents)
      .where(and(eq(outboxEvents.key, serverId), eq(outboxEvents.type, "operation.started")));
    assert.equal((event?.payload as { startedBy?: string } | undefined)?.startedBy, "fleet_check");
  });

  test("an owner's start names the owner as its starter", async () => {
    const serverId = await alicesServer();
    await startOperation(api.database.db, { id: alice.ownerId, name: "alice", role: "admin" }, serverId, "recovery");
    const [event] = await api.database.db
      .select()
      .from(outboxEvents)
      .where(and(eq(outboxEvents.key, serverId), eq(outboxEvents.type, "operation.started")));
    assert.equal((event?.payload as { startedBy?: string } | undefined)?.startedBy, "owner");
  });

  test("an owner cannot open an operation on another owner's server: not found, and no row", async () => {
    const serverId = await alicesServer();
    await assert.rejects(
      startOperation(api.database.db, { id: bob.ownerId, name: "bob", role: "admin" }, serverId, "recovery"),
      (error) => error instanceof AppError && error.kind === "not_found",
    );
    assert.deepEqual(await api.database.db.select().from(operations).where(eq(operations.serverId, serverId)), []);
  });

  test("a system start on a server deleted meanwhile is not found, and leaves no row", async () => {
    const serverId = await alicesServer();
    await api.clients(alice.token).servers.deleteServer({ id: serverId });
    await assert.rejects(
      startSystemOperation(api.database.db, serverId, "recovery", "offline_recovery"),
      (error) => error instanceof AppError && error.kind === "not_found",
    );
  });
});
