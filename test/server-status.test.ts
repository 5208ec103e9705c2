import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { and, eq } from "drizzle-orm";
import { type ActorName, type StatusActor, setServerStatus } from "../core/inventory/server-status.js";
import type { ServerStatus } from "../core/kernel/kinds.js";
import { finishOperation, startOperation } from "../core/operations/operations.js";
import { operations, outboxEvents, servers } from "../db/schema.js";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ConnectionOutcome, ServerStatus as ProtoStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { holdCommand } from "./support/host-gate.js";
import { followJournal } from "./support/host-journal.js";
import { ed25519KeyPair } from "./support/keys.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, downHosts, type Fleet, upHosts } from "./support/testhosts.js";

const key = ed25519KeyPair();

/** Who may move a server from which status to which: [actor, from, to, allowed]. */
const table: [ActorName, ServerStatus, ServerStatus, boolean][] = [
  // Probes never overwrite a live agent's ONLINE or a running operation's transitional status.
  ["connection_test", "ONLINE", "UNREACHABLE", false],
  ["connection_test", "PROVISIONING", "UNREACHABLE", false],
  ["connection_test", "REINSTALLING", "UNREACHABLE", false],
  ["connection_test", "CONFIGURED", "UNREACHABLE", true],
  ["connection_test", "PENDING", "UNREACHABLE", true],
  ["connection_test", "CONFIGURED", "ONLINE", false],
  ["fleet_check", "ONLINE", "UNREACHABLE", false],
  ["fleet_check", "PROVISIONING", "UNREACHABLE", false],
  ["fleet_check", "OFFLINE", "UNREACHABLE", true],
  ["fleet_check", "HOSTKEY_MISMATCH", "UNREACHABLE", false],
  // Operations move their own server through their statuses.
  ["operation:bootstrap", "ONLINE", "PROVISIONING", true],
  ["operation:bootstrap", "PROVISIONING", "CONFIGURED", true],
  ["operation:bootstrap", "PROVISIONING", "ERROR", true],
  ["operation:bootstrap", "ONLINE", "CONFIGURED", false],
  ["operation:bootstrap", "CONFIGURED", "ONLINE", false],
  ["operation:reinstall", "CONFIGURED", "REINSTALLING", true],
  ["operation:reinstall", "PROVISIONING", "CONFIGURED", true],
  ["operation:recovery", "ONLINE", "ERROR", true],
  ["operation:recovery", "ERROR", "CONFIGURED", false],
  ["operation:deploy_key", "ONLINE", "PROVISIONING", false],
  ["operation:test_connection", "CONFIGURED", "UNREACHABLE", false],
  // Liveness: heartbeats and their silence.
  ["liveness", "ONLINE", "OFFLINE", true],
  ["liveness", "UNREACHABLE", "ONLINE", true],
  ["liveness", "PROVISIONING", "ONLINE", false],
  ["liveness", "ERROR", "OFFLINE", false],
  // Only once an agent registered after the failure (the sweep checks that: test/liveness.test.ts).
  ["liveness", "ERROR", "ONLINE", true],
  // The SSH layer may always report a changed host key.
  ["host_key_check", "PROVISIONING", "HOSTKEY_MISMATCH", true],
  ["host_key_check", "ONLINE", "HOSTKEY_MISMATCH", true],
  // The reconciler only frees servers stranded in transition.
  ["reconciler", "PROVISIONING", "ERROR", true],
  ["reconciler", "REINSTALLING", "ERROR", true],
  ["reconciler", "ONLINE", "ERROR", false],
  ["reconciler", "CONFIGURED", "PENDING", false],
  // The owner: a new address is a new machine to provision.
  ["user", "CONFIGURED", "PENDING", true],
  ["user", "ONLINE", "PENDING", true],
  ["user", "PROVISIONING", "PENDING", false],
];

describe("server status state machine on PGlite", () => {
  let api: TestApi;
  let ownerId: string;
  let token: string;
  let clusterId: string;
  let n = 0;

  before(async () => {
    api = await startTestApi();
    const owner = await api.newOwner();
    ownerId = owner.ownerId;
    token = owner.token;
    clusterId = (await api.clients(token).clusters.createCluster({ name: "states" })).cluster!.id;
  });
  after(() => api?.close());

  const newServer = async (status: ServerStatus) => {
    const server = (
      await api.clients(token).servers.createServer({
        clusterId,
        name: `st-${++n}`,
        host: `10.88.0.${n}`,
        credential: { method: { case: "privateKey", value: { key: key.privateKey } } },
      })
    ).server!;
    await api.database.db.update(servers).set({ status }).where(eq(servers.id, server.id));
    return server.id;
  };
  const statusOf = async (id: string) =>
    (await api.database.db.select({ status: servers.status }).from(servers).where(eq(servers.id, id)))[0]?.status;
  const eventsOf = async (id: string) =>
    (
      await api.database.db
        .select()
        .from(outboxEvents)
        .where(and(eq(outboxEvents.key, id), eq(outboxEvents.type, "server.status_changed")))
    ).length;

  for (const [name, from, to, allowed] of table) {
    test(`${name}: ${from} → ${to} is ${allowed ? "allowed" : "refused"}`, async () => {
      const serverId = await newServer(from);
      let actor: StatusActor;
      if (name.startsWith("operation:")) {
        const kind = name.slice("operation:".length) as Extract<StatusActor, { by: "operation" }>["kind"];
        const op = await startOperation(api.database.db, { id: ownerId, name: "", role: "admin" }, serverId, kind);
        actor = { by: "operation", kind, operationId: op.id };
      } else {
        actor = { by: name } as StatusActor;
      }
      const write = await setServerStatus(api.database.db, serverId, to, "table test", actor);
      assert.equal(write.changed, allowed, JSON.stringify(write));
      assert.equal(await statusOf(serverId), allowed ? to : from);
      assert.equal(await eventsOf(serverId), allowed ? 1 : 0, "an event exactly when the status changed");
    });
  }

  test("probes and the reconciler stand back while a provisioning operation runs", async () => {
    const serverId = await newServer("CONFIGURED");
    const op = await startOperation(api.database.db, { id: ownerId, name: "", role: "admin" }, serverId, "recovery");
    for (const by of ["connection_test", "fleet_check"] as const) {
      const write = await setServerStatus(api.database.db, serverId, "UNREACHABLE", "probe", { by });
      assert.equal(write.changed, false);
      assert.match(write.changed ? "" : (write.refused ?? ""), /recovery operation .* is running/);
    }
    await finishOperation(api.database.db, op.id, { status: "SUCCEEDED" });
    assert.equal((await setServerStatus(api.database.db, serverId, "UNREACHABLE", "probe", { by: "fleet_check" })).changed, true);
  });

  test("an operation whose row has ended no longer writes statuses", async () => {
    const serverId = await newServer("CONFIGURED");
    const op = await startOperation(api.database.db, { id: ownerId, name: "", role: "admin" }, serverId, "bootstrap");
    await finishOperation(api.database.db, op.id, { status: "FAILED", error: "terminated" });
    const write = await setServerStatus(api.database.db, serverId, "PROVISIONING", "late", {
      by: "operation",
      kind: "bootstrap",
      operationId: op.id,
    });
    assert.equal(write.changed, false);
    assert.equal(await statusOf(serverId), "CONFIGURED");
  });

  test("UpdateServer refuses host, port, user and credential changes while an operation runs; other fields pass", async () => {
    const client = api.clients(token);
    const serverId = await newServer("CONFIGURED");
    const op = await startOperation(api.database.db, { id: ownerId, name: "", role: "admin" }, serverId, "bootstrap");
    await expectCode(client.servers.updateServer({ id: serverId, host: "10.99.0.1" }), Code.FailedPrecondition, /bootstrap operation/);
    await expectCode(client.servers.updateServer({ id: serverId, sshPort: 2222 }), Code.FailedPrecondition);
    await expectCode(client.servers.updateServer({ id: serverId, sshUser: "deploy" }), Code.FailedPrecondition);
    await expectCode(
      client.servers.updateServer({ id: serverId, credential: { method: { case: "password", value: "another" } } }),
      Code.FailedPrecondition,
    );
    const renamed = await client.servers.updateServer({ id: serverId, name: "renamed-during-bootstrap" });
    assert.equal(renamed.server?.name, "renamed-during-bootstrap");
    const [row] = await api.database.db.select().from(servers).where(eq(servers.id, serverId));
    assert.equal(row?.host.startsWith("10.88.0."), true, "the address is unchanged");

    await finishOperation(api.database.db, op.id, { status: "SUCCEEDED" });
    const moved = await client.servers.updateServer({ id: serverId, host: "10.99.0.1" });
    assert.equal(moved.server?.host, "10.99.0.1");
    assert.equal(moved.server?.status, ProtoStatus.PENDING, "a new address is a machine to provision");
    assert.match(moved.server?.statusReason ?? "", /address changed to 10\.99\.0\.1:22/);
    assert.equal((await api.database.db.select().from(operations).where(eq(operations.serverId, serverId))).length, 1);
  });
});

describe("statuses on real hosts: probes never overwrite what operations and agents own", { timeout: 15 * 60_000 }, () => {
  const prefix = "pstatus";
  let harness: ProvisioningHarness;
  let fleet: Fleet;
  let alice: ReturnType<ProvisioningHarness["api"]["clients"]>;
  let clusterId: string;
  let n = 0;
  const register = async (host: string) =>
    (
      await alice.servers.createServer({
        clusterId,
        name: `status-${++n}`,
        host,
        credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
      })
    ).server!;

  before(async () => {
    buildImage();
    downHosts(prefix);
    fleet = upHosts(prefix, 1, "fresh");
    harness = await startProvisioningHarness({ sshConnectTimeoutMs: 4000 });
    alice = harness.api.clients((await harness.api.newOwner()).token);
    clusterId = (await alice.clusters.createCluster({ name: "status" })).cluster!.id;
  });
  after(async () => {
    await harness?.close();
    downHosts(prefix);
  });

  test("a connection test that cannot log in to an agent-ONLINE server leaves it ONLINE", async () => {
    const server = await register(fleet.hosts[0]!.ip);
    // Port 1 on the host answers with a refusal: the connection test sees an unreachable server.
    await harness.api.database.db.update(servers).set({ sshPort: 1, status: "ONLINE" }).where(eq(servers.id, server.id));
    const answer = await alice.servers.testServerConnection({ id: server.id });
    assert.equal(answer.outcome, ConnectionOutcome.UNREACHABLE, answer.message);
    const after = (await alice.servers.getServer({ id: server.id })).server!;
    assert.equal(after.status, ProtoStatus.ONLINE, `status reason: ${after.statusReason}`);
  });

  test("a connection test's SSH session ends on the host as soon as the test answers", async (t) => {
    const host = fleet.hosts[0]!;
    const bob = harness.api.clients((await harness.api.newOwner()).token);
    const cluster = (await bob.clusters.createCluster({ name: "probe" })).cluster!.id;
    const credential = { method: { case: "privateKey" as const, value: { key: fleet.privateKey } } };
    const server = (await bob.servers.createServer({ clusterId: cluster, name: "probed", host: host.ip, credential })).server!;
    const sshd = followJournal(host.name, ["SYSLOG_IDENTIFIER=sshd"]);
    try {
      const answer = await bob.servers.testServerConnection({ id: server.id });
      const answeredAt = Date.now();
      assert.equal(answer.outcome, ConnectionOutcome.OK, answer.message);
      // The test's login, then the end of that sshd session (its monitor process logs both).
      const login = await sshd.next((e) => e.MESSAGE?.startsWith("Accepted publickey for root ") === true);
      const ended = await sshd.next((e) => e._PID === login._PID && e.MESSAGE?.includes("session closed for user root") === true);
      const lingeredMs = Number(ended.__REALTIME_TIMESTAMP) / 1000 - answeredAt;
      t.diagnostic(`session ended ${Math.round(lingeredMs)} ms after the answer`);
      assert.ok(lingeredMs < 3000, `the session ended ${Math.round(lingeredMs)} ms after the answer (the pool's idle time is 15 s)`);
    } finally {
      sshd.stop();
    }
  });

  test("UpdateServer of the host during a running bootstrap is FailedPrecondition", async () => {
    const server = await register(fleet.hosts[0]!.ip);
    // The admin_user step is held on the host (its useradd): the bootstrap runs until the test lets it go.
    const gate = await holdCommand(fleet, fleet.hosts[0]!, "useradd", "/usr/sbin/useradd");
    const started = await alice.servers.configureServer({ id: server.id });
    try {
      await gate.reached;
      await expectCode(alice.servers.updateServer({ id: server.id, host: "10.213.250.250" }), Code.FailedPrecondition, /bootstrap/);
      assert.equal((await alice.servers.getServer({ id: server.id })).server?.status, ProtoStatus.PROVISIONING);
      await alice.operations.cancelOperation({ id: started.operation!.id });
    } finally {
      await gate.release();
    }
    const op = await watchUntilEnd(alice.operations, started.operation!.id);
    assert.equal(op.status, OperationStatus.CANCELLED);
    assert.equal((await alice.servers.getServer({ id: server.id })).server?.host, fleet.hosts[0]!.ip);
  });
});
