import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Redis } from "ioredis";
import { QUEUE, type QueueConsumer, RESULTS, startProvisionerQueue } from "../compat/provisioner-queue.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { startRedis } from "./support/redis.js";
import { buildImage, downHosts, type Fleet, upHosts } from "./support/testhosts.js";

const prefix = "pseed";
let redisServer: Awaited<ReturnType<typeof startRedis>>;
let redis: Redis;
let harness: ProvisioningHarness;
let consumer: QueueConsumer;
let fleet: Fleet;
let serverId: string;

before(async () => {
  buildImage();
  downHosts(prefix);
  fleet = upHosts(prefix, 1, "fresh");
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  harness = await startProvisioningHarness({ sshConnectTimeoutMs: 4000 });
  const alice = harness.api.clients((await harness.api.newOwner()).token);
  const clusterId = (await alice.clusters.createCluster({ name: "seed" })).cluster!.id;
  serverId = (
    await alice.servers.createServer({
      clusterId,
      name: "seed-host",
      host: fleet.hosts[0]!.ip,
      credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
    })
  ).server!.id;
  consumer = startProvisionerQueue({
    redisUrl: redisServer.url,
    db: harness.api.database.db,
    workflows: { client: harness.client, taskQueue: harness.taskQueue },
  });
});

after(async () => {
  await consumer?.stop();
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

test("a server name works as a handle", async () => {
  await redis.rpush(QUEUE, JSON.stringify({ server_handle: "seed-host", is_recovery: true }));
  const result = await nextResult();
  assert.equal(result.status, "success", String(result.error));
  assert.equal(result.server_handle, "seed-host");
});

test("bad messages are rejected with a reason naming the field, and nothing starts", async () => {
  const before = (await harness.api.database.db.query.operations.findMany()).length;
  const cases: [string, RegExp][] = [
    ["not json", /not JSON/],
    [JSON.stringify({ server_handle: "no-such-server" }), /^server_handle: no such server/],
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
  assert.equal(await redis.llen("provisioner:processing"), 0, "every message left the processing list");
});
