import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { and, eq } from "drizzle-orm";
import { Redis } from "ioredis";
import { processingListOf, QUEUE, type QueueConsumer, RESULTS, startProvisionerQueue } from "../compat/provisioner-queue.js";
import { WORKERS } from "../compat/queue-workers.js";
import type { OperationKind } from "../core/kernel/kinds.js";
import { operations, servers } from "../db/schema.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { startRedis } from "./support/redis.js";
import { buildImage, downHosts, type Fleet, upHosts } from "./support/testhosts.js";

const prefix = "pseed";
const queueOwner = "seed-owner";
let redisServer: Awaited<ReturnType<typeof startRedis>>;
let redis: Redis;
let harness: ProvisioningHarness;
let consumer: QueueConsumer;
const extraConsumers: QueueConsumer[] = [];
let fleet: Fleet;
let serverId: string;
let vpsId: string;
let bobServerIds: string[];

const startConsumer = () => {
  const started = startProvisionerQueue({
    redisUrl: redisServer.url,
    db: harness.api.database.db,
    workflows: { client: harness.client, taskQueue: harness.taskQueue },
    ownerName: queueOwner,
    dedupeSeconds: 3600,
  });
  extraConsumers.push(started);
  return started;
};

before(async () => {
  buildImage();
  downHosts(prefix);
  fleet = upHosts(prefix, 1, "fresh");
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  harness = await startProvisioningHarness({ sshConnectTimeoutMs: 4000 });
  const alice = harness.api.clients((await harness.api.newOwner(queueOwner)).token);
  const clusterId = (await alice.clusters.createCluster({ name: "seed" })).cluster!.id;
  const credential = { method: { case: "privateKey" as const, value: { key: fleet.privateKey } } };
  serverId = (await alice.servers.createServer({ clusterId, name: "seed-host", host: fleet.hosts[0]!.ip, credential })).server!.id;
  // A VPS no worker here has a provider for: a reinstall fails at the rebuild request, after its operation started.
  vpsId = (
    await alice.servers.createServer({
      clusterId,
      name: "seed-vps",
      host: "10.250.0.2",
      credential,
      provider: "time4vps",
      providerServerId: "999",
    })
  ).server!.id;
  // Another owner, with a server of the same name and one of its own.
  const bob = harness.api.clients((await harness.api.newOwner()).token);
  const bobCluster = (await bob.clusters.createCluster({ name: "seed" })).cluster!.id;
  bobServerIds = [
    (await bob.servers.createServer({ clusterId: bobCluster, name: "seed-host", host: "10.250.0.3", credential })).server!.id,
    (await bob.servers.createServer({ clusterId: bobCluster, name: "bob-only", host: "10.250.0.4", credential })).server!.id,
  ];
  consumer = startConsumer();
  await consumer.ready;
});

after(async () => {
  for (const c of extraConsumers) await c.stop();
  redis?.disconnect();
  await harness?.close();
  await redisServer?.stop();
  downHosts(prefix);
});

async function nextResult(): Promise<Record<string, unknown>> {
  const popped = await redis.blpop(RESULTS, 120);
  assert.ok(popped, "a result arrives on provisioner:results");
  return JSON.parse(popped[1]);
}

const operationsOf = async (id: string, kind: OperationKind) =>
  harness.api.database.db
    .select()
    .from(operations)
    .where(and(eq(operations.serverId, id), eq(operations.kind, kind)));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const found = await probe();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const runningRecovery = (since: number) =>
  waitFor("the recovery operation to start", async () => {
    const ops = await operationsOf(serverId, "recovery");
    return ops.length > since ? ops.find((o) => o.status === "RUNNING") : undefined;
  });

test("a seed message {server_handle, is_recovery} runs the recovery workflow and reports success", async () => {
  await redis.rpush(QUEUE, JSON.stringify({ server_handle: serverId, force_reinstall: false, is_recovery: true }));
  const result = await nextResult();
  assert.equal(result.status, "success", String(result.error));
  assert.equal(result.kind, "recovery");
  assert.equal(result.workflow_id, `recovery/${serverId}`);
  assert.equal(result.server_handle, serverId);
  const described = await harness.client.workflow.getHandle(String(result.workflow_id)).describe();
  assert.equal(described.type, "recoveryWorkflow");
});

test("a server name works as a handle, among the configured owner's servers only", async () => {
  await redis.rpush(QUEUE, JSON.stringify({ server_handle: "seed-host", is_recovery: true }));
  const result = await nextResult();
  assert.equal(result.status, "success", String(result.error));
  assert.equal(result.server_handle, "seed-host");
  assert.equal(result.workflow_id, `recovery/${serverId}`, "the configured owner's seed-host, not the other owner's");
});

test("bad messages and other owners' servers are rejected with a reason naming the field, and nothing starts", async () => {
  const before = (await harness.api.database.db.query.operations.findMany()).length;
  const cases: [string, RegExp][] = [
    ["not json", /not JSON/],
    [JSON.stringify({ server_handle: "no-such-server" }), /^server_handle: no such server/],
    [JSON.stringify({ server_handle: "bob-only", force_reinstall: true }), /^server_handle: no such server/],
    [JSON.stringify({ server_handle: bobServerIds[0], force_reinstall: true }), /^server_handle: no such server/],
    [JSON.stringify({ server_handle: bobServerIds[1], is_recovery: true }), /^server_handle: no such server/],
    [JSON.stringify({ server_handle: "seed\u0000host" }), /^server_handle: must not contain control characters/],
    [JSON.stringify({ server_handle: serverId, force_reinstall: "yes" }), /^force_reinstall:/],
    [JSON.stringify({ is_recovery: true }), /^server_handle:/],
  ];
  for (const [message, pattern] of cases) {
    await redis.rpush(QUEUE, message);
    const result = await nextResult();
    assert.equal(result.status, "rejected");
    assert.match(String(result.error), pattern);
  }
  assert.equal((await harness.api.database.db.query.operations.findMany()).length, before);
  for (const id of bobServerIds) {
    const [row] = await harness.api.database.db.select().from(servers).where(eq(servers.id, id));
    assert.equal(row!.status, "PENDING", "the other owner's server is untouched");
  }
  assert.equal(await redis.llen(processingListOf(consumer.workerId)), 0, "every message left the processing list");
});

test("the same message pushed twice is processed once; the copy is answered with the earlier result", async () => {
  const before = (await operationsOf(serverId, "recovery")).length;
  const message = JSON.stringify({ is_recovery: true, server_handle: serverId });
  await redis.rpush(QUEUE, message, message);
  const first = await nextResult();
  assert.equal(first.status, "success", String(first.error));
  assert.deepEqual(await nextResult(), first);
  await redis.rpush(QUEUE, message);
  assert.deepEqual(await nextResult(), first, "a later copy too");
  assert.equal((await operationsOf(serverId, "recovery")).length, before + 1);
});

test("force_reinstall pushed twice starts one reinstall", async () => {
  const message = JSON.stringify({ server_handle: "seed-vps", force_reinstall: true });
  await redis.rpush(QUEUE, message, message);
  const first = await nextResult();
  assert.equal(first.kind, "reinstall");
  assert.notEqual(first.status, "rejected", String(first.error));
  assert.deepEqual(await nextResult(), first);
  assert.equal((await operationsOf(vpsId, "reinstall")).length, 1);
});

test("starting a second worker leaves the first worker's in-flight message alone", async () => {
  const before = (await operationsOf(serverId, "recovery")).length;
  await harness.stopWorker(); // the workflow cannot progress: the message stays in flight
  const message = JSON.stringify({ server_handle: serverId, is_recovery: true, message_id: "in-flight-1" });
  await redis.rpush(QUEUE, message);
  await runningRecovery(before);
  const second = startConsumer();
  await second.ready;
  assert.deepEqual(await redis.lrange(processingListOf(consumer.workerId), 0, -1), [message]);
  assert.equal(await redis.llen(processingListOf(second.workerId)), 0);
  assert.equal(await redis.llen(QUEUE), 0);
  await harness.startWorker();
  const result = await nextResult();
  assert.equal(result.status, "success", String(result.error));
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await redis.llen(RESULTS), 0, "one message, one result");
  assert.equal((await operationsOf(serverId, "recovery")).length, before + 1);
  await second.stop();
});

test("a dead worker's in-flight message is reclaimed and processed", async () => {
  const before = (await operationsOf(serverId, "recovery")).length;
  // What a worker that crashed right after taking a message leaves: its list, its registration, no heartbeat.
  const message = JSON.stringify({ server_handle: serverId, is_recovery: true, message_id: "orphan-1" });
  await redis.multi().sadd(WORKERS, "crashed-worker").rpush(processingListOf("crashed-worker"), message).exec();
  const reclaimer = startConsumer();
  await reclaimer.ready;
  const result = await nextResult();
  assert.equal(result.status, "success", String(result.error));
  assert.equal(await redis.llen(processingListOf("crashed-worker")), 0);
  assert.equal(await redis.sismember(WORKERS, "crashed-worker"), 0);
  assert.equal((await operationsOf(serverId, "recovery")).length, before + 1);
  await reclaimer.stop();
});

test("a worker that dies after starting the workflow: the taker-over answers that operation and starts none", async () => {
  const before = (await operationsOf(serverId, "recovery")).length;
  await consumer.stop(); // the only consumer left is the one that dies
  const dying = startConsumer();
  await dying.ready;
  await harness.stopWorker();
  const message = JSON.stringify({ server_handle: serverId, is_recovery: true, message_id: "dies-1" });
  await redis.rpush(QUEUE, message);
  const operation = await runningRecovery(before);
  await dying.stop(); // no heartbeat any more: dead to the others
  await harness.startWorker();
  await waitFor("the workflow to finish", async () => {
    const [row] = await harness.api.database.db.select().from(operations).where(eq(operations.id, operation.id));
    return row?.status === "RUNNING" ? undefined : row;
  });
  assert.deepEqual(await redis.lrange(processingListOf(dying.workerId), 0, -1), [message], "nobody answered it yet");

  consumer = startConsumer();
  await consumer.ready;
  const result = await nextResult();
  assert.equal(result.status, "success", String(result.error));
  assert.equal(result.operation_id, operation.id);
  assert.equal((await operationsOf(serverId, "recovery")).length, before + 1, "no second run");
});
