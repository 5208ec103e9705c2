import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import type { Client } from "@temporalio/client";
import { sql } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { BusyServerPolicy, type Rollout, RolloutServerState, RolloutStatus } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { expectCode } from "./support/assertions.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";

type Clients = ReturnType<ProvisioningHarness["api"]["clients"]>;

const rows = async <T>(db: Database, query: ReturnType<typeof sql>): Promise<T[]> => {
  const result = (await db.execute(query)) as unknown as T[] | { rows: T[] };
  return Array.isArray(result) ? result : result.rows;
};

/**
 * `n` servers of an owner that exist only in the database (no credential, at loopback addresses
 * the network policy refuses): every operation on them ends at once, without a host.
 */
let portsUsed = 0;
async function insertServers(db: Database, ownerId: string, cluster: string, n: number): Promise<string> {
  const firstPort = 1000 + portsUsed;
  portsUsed += n;
  const [row] = await rows<{ id: string }>(
    db,
    sql`with c as (insert into clusters (id, owner_id, name) values (gen_random_uuid(), ${ownerId}, ${cluster}) returning id)
      insert into servers (id, owner_id, cluster_id, name, host, ssh_port, auth_method)
      select gen_random_uuid(), ${ownerId}, c.id, ${cluster} || '-' || lpad(i::text, 5, '0'), '127.0.0.1', ${firstPort} + i, 'private_key'
      from c, generate_series(1, ${n}) as i returning cluster_id as id`,
  );
  return (row as { id: string }).id;
}

async function watchToEnd(clients: Clients, id: string): Promise<Rollout> {
  let last: Rollout | undefined;
  for await (const update of clients.rollouts.watchRollout({ id })) last = update.rollout;
  assert.ok(last);
  return last;
}

async function waitForStatus(clients: Clients, id: string, status: RolloutStatus, timeoutMs = 60_000): Promise<Rollout> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rollout = (await clients.rollouts.getRollout({ id })).rollout!;
    if (rollout.status === status) return rollout;
    if (Date.now() > deadline) assert.fail(`rollout ${id} is ${RolloutStatus[rollout.status]}, not ${RolloutStatus[status]}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every run of a workflow id (the chain of continue-as-new) with its history length. */
async function runsOf(client: Client, workflowId: string): Promise<{ runId: string; events: number }[]> {
  const runs: { runId: string; events: number }[] = [];
  for await (const execution of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
    const history = await client.workflow.getHandle(workflowId, execution.runId).fetchHistory();
    runs.push({ runId: execution.runId, events: history.events?.length ?? 0 });
  }
  return runs;
}

const testConnection = (clusterId: string, strategy: Record<string, unknown> = {}) => ({
  kind: RolloutKind.TEST_CONNECTION,
  target: { clusterId },
  strategy: { maxFailures: { value: { case: "percent" as const, value: 100 } }, ...strategy },
});

/** The history test's fleet (ROLLOUT_HISTORY_FLEET to change; 2,000 by default). */
const FLEET = Number(process.env.ROLLOUT_HISTORY_FLEET ?? 2000);
/** The rollout workflow's runs: each operates at most this many servers, then continues as new. */
const SERVERS_PER_RUN = 400;

describe("rollouts through the API and a real Temporal server (no hosts)", { timeout: 60 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let alice: Clients;
  let aliceId: string;
  let db: Database;
  let postgres: TestPostgres;
  before(async () => {
    // PostgreSQL, not in-process PGlite: thousands of children's activities would queue on this process' event loop.
    postgres = await startPostgres();
    harness = await startProvisioningHarness({ sshConnectTimeoutMs: 2000, maxServersPerOwner: 5000, databaseUrl: postgres.url });
    db = harness.api.database.db;
    const owner = await harness.api.newOwner("rollout-alice");
    alice = harness.api.clients(owner.token);
    aliceId = owner.ownerId;
  });
  after(async () => {
    await harness?.close();
    await postgres?.stop();
  });

  test("bad requests are InvalidArgument naming the field, and nothing is written", async () => {
    const clusterId = await insertServers(db, aliceId, "valid", 6);
    const strategy = (s: Record<string, unknown>) => ({ kind: RolloutKind.CONFIGURE, target: { clusterId }, strategy: s });
    await expectCode(alice.rollouts.startRollout({ target: { clusterId } }), Code.InvalidArgument, /^kind: must be set/);
    await expectCode(alice.rollouts.startRollout({ kind: RolloutKind.CONFIGURE }), Code.InvalidArgument, /^target: /);
    await expectCode(
      alice.rollouts.startRollout(strategy({ batchSize: { value: { case: "percent", value: 120 } } })),
      Code.InvalidArgument,
      /^strategy\.batch_size\.percent: must be between 1 and 100/,
    );
    await expectCode(
      alice.rollouts.startRollout(strategy({ maxFailures: { value: { case: "count", value: 0 } } })),
      Code.InvalidArgument,
      /^strategy\.max_failures\.count: /,
    );
    await expectCode(
      alice.rollouts.startRollout(strategy({ batchSize: {} })),
      Code.InvalidArgument,
      /^strategy\.batch_size: set count or percent/,
    );
    await expectCode(
      alice.rollouts.startRollout(strategy({ canarySize: 0, pauseAfterCanary: true })),
      Code.InvalidArgument,
      /^strategy\.pause_after_canary: /,
    );
    await expectCode(
      alice.rollouts.startRollout(strategy({ batchPause: { seconds: -5n, nanos: 0 } })),
      Code.InvalidArgument,
      /^strategy\.batch_pause: /,
    );
    await expectCode(
      alice.rollouts.startRollout({ kind: RolloutKind.CONFIGURE, target: { serverIds: ["nope"] } }),
      Code.InvalidArgument,
      /^target\.server_ids\[0\]: must be a UUID/,
    );
    await expectCode(
      alice.rollouts.startRollout({ kind: RolloutKind.CONFIGURE, target: { clusterId: "x" } }),
      Code.InvalidArgument,
      /^target\.cluster_id: /,
    );
    await expectCode(
      alice.rollouts.startRollout({ kind: RolloutKind.CONFIGURE, target: { selector: "a\u0000" } }),
      Code.InvalidArgument,
      /^target\.selector: /,
    );
    const bob = harness.api.clients((await harness.api.newOwner("rollout-bob")).token);
    await expectCode(bob.rollouts.startRollout({ kind: RolloutKind.CONFIGURE, target: { clusterId } }), Code.NotFound);
    await expectCode(alice.rollouts.getRollout({ id: "0193a000-0000-7000-8000-000000000000" }), Code.NotFound);
    const [written] = await rows<{ n: number }>(db, sql`select count(*)::int as n from rollouts`);
    assert.equal(written?.n, 0);
    const [opened] = await rows<{ n: number }>(db, sql`select count(*)::int as n from operations`);
    assert.equal(opened?.n, 0);
  });

  test("PlanRollout answers the batches in order: canary 1, batches of 2, the failure budget as a count", async () => {
    const [cluster] = await rows<{ id: string }>(db, sql`select id from clusters where name = 'valid'`);
    const plan = await alice.rollouts.planRollout({
      kind: RolloutKind.CONFIGURE,
      target: { clusterId: cluster!.id },
      strategy: {
        canarySize: 1,
        batchSize: { value: { case: "count", value: 2 } },
        maxFailures: { value: { case: "percent", value: 20 } },
      },
    });
    assert.deepEqual(
      plan.batches.map((b) => [b.index, b.canary, b.serverIds.length]),
      [
        [0, true, 1],
        [1, false, 2],
        [2, false, 2],
        [3, false, 1],
      ],
    );
    assert.equal(plan.total, 6);
    assert.equal(plan.maxFailures, 2);
    const names = await rows<{ id: string; name: string }>(
      db,
      sql`select id, name from servers where cluster_id = ${cluster!.id} order by name`,
    );
    assert.deepEqual(
      plan.batches.flatMap((b) => b.serverIds),
      names.map((n) => n.id),
      "targets in name order",
    );

    await db.execute(sql`update servers set labels = '{"role":"web"}'::jsonb where id in (${names[1]!.id}, ${names[4]!.id})`);
    const web = await alice.rollouts.planRollout({ kind: RolloutKind.CONFIGURE, target: { clusterId: cluster!.id, selector: "role=web" } });
    assert.deepEqual(
      web.batches.map((b) => b.serverIds),
      [[names[1]!.id], [names[4]!.id]],
      "cluster and selector both hold",
    );
    await expectCode(
      alice.rollouts.planRollout({ kind: RolloutKind.CONFIGURE, target: { selector: "role in (web" } }),
      Code.InvalidArgument,
      /^target\.selector: position/,
    );
  });

  test("pause after the canary holds the rollout; pausing it again, or once it has ended, is FailedPrecondition", async () => {
    const clusterId = await insertServers(db, aliceId, "paused", 3);
    const { rollout } = await alice.rollouts.startRollout(
      testConnection(clusterId, { canarySize: 1, batchSize: { value: { case: "count", value: 1 } }, pauseAfterCanary: true }),
    );
    const paused = await waitForStatus(alice, rollout!.id, RolloutStatus.PAUSED);
    assert.match(paused.reason, /paused after the canary/);
    assert.deepEqual(
      paused.servers.map((s) => s.state),
      [RolloutServerState.FAILED, RolloutServerState.PENDING, RolloutServerState.PENDING],
    );
    assert.match(paused.servers[0]!.reason, /^unreachable: /);
    await expectCode(alice.rollouts.pauseRollout({ id: rollout!.id }), Code.FailedPrecondition, /is already paused/);

    const resumed = await alice.rollouts.resumeRollout({ id: rollout!.id });
    assert.equal(resumed.rollout!.status, RolloutStatus.RUNNING);
    const end = await watchToEnd(alice, rollout!.id);
    // Every connection test was refused by the network policy: 3 failures reach the 100 % budget.
    assert.equal(end.status, RolloutStatus.FAILED);
    assert.deepEqual([end.counts!.total, end.counts!.failed, end.counts!.pending], [3, 3, 0]);
    await expectCode(alice.rollouts.pauseRollout({ id: rollout!.id }), Code.FailedPrecondition, /has ended \(FAILED\): nothing to pause/);
    await expectCode(alice.rollouts.resumeRollout({ id: rollout!.id }), Code.FailedPrecondition, /has ended/);
    await expectCode(alice.rollouts.abortRollout({ id: rollout!.id }), Code.FailedPrecondition, /has ended/);

    const events = await rows<{ type: string }>(db, sql`select type from outbox_events where key = ${rollout!.id} order by created_at, id`);
    assert.deepEqual(
      events.map((e) => e.type),
      ["rollout.started", "rollout.batch_finished", "rollout.batch_finished", "rollout.batch_finished", "rollout.failed"],
    );
    const linked = await rows<{ n: number }>(db, sql`select count(*)::int as n from operations where rollout_id = ${rollout!.id}`);
    assert.equal(linked[0]?.n, 3, "each child's operation is linked to the rollout");

    // The parent and every child carry AxionRolloutId.
    let ids = new Set<string>();
    for (let i = 0; i < 50 && ids.size < 4; i++) {
      ids = new Set<string>();
      for await (const w of harness.client.workflow.list({ query: `AxionRolloutId = "${rollout!.id}"` })) ids.add(w.workflowId);
      if (ids.size < 4) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(ids.size, 4, [...ids].join(", "));
    assert.ok(ids.has(`rollout/${rollout!.id}`));
  });

  test("a busy server is skipped, or waited for; abort ends a waiting rollout ABORTED and leaves the server untouched", async () => {
    const clusterId = await insertServers(db, aliceId, "busy", 2);
    const [busy] = await rows<{ id: string }>(db, sql`select id from servers where cluster_id = ${clusterId} order by name limit 1`);
    const opId = "0193a000-0000-7000-8000-00000000b051";
    await db.execute(sql`insert into operations (id, owner_id, server_id, kind, workflow_id, run_id)
      values (${opId}, ${aliceId}, ${busy!.id}, 'bootstrap', ${`bootstrap/${busy!.id}`}, 'elsewhere')`);

    // Connection tests run beside anything; the other kinds keep one operation per server.
    const configure = {
      kind: RolloutKind.CONFIGURE,
      target: { clusterId },
      strategy: { maxFailures: { value: { case: "percent" as const, value: 100 } } },
    };
    const skipped = await watchToEnd(alice, (await alice.rollouts.startRollout(configure)).rollout!.id);
    assert.equal(skipped.servers[0]!.state, RolloutServerState.SKIPPED);
    assert.match(skipped.servers[0]!.reason, new RegExp(`running bootstrap operation ${opId}`));
    assert.equal(skipped.counts!.skipped, 1);
    assert.equal(skipped.servers[1]!.state, RolloutServerState.FAILED, "the other one ran");

    const { rollout } = await alice.rollouts.startRollout({
      kind: RolloutKind.CONFIGURE,
      target: { clusterId },
      strategy: { busyPolicy: BusyServerPolicy.WAIT, busyWaitTimeout: { seconds: 600n, nanos: 0 } },
    });
    let waiting: Rollout | undefined;
    for (let i = 0; i < 100; i++) {
      waiting = (await alice.rollouts.getRollout({ id: rollout!.id })).rollout!;
      if (waiting.servers[0]?.state === RolloutServerState.WAITING) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(waiting?.servers[0]?.state, RolloutServerState.WAITING);
    assert.equal(waiting?.servers[1]?.state, RolloutServerState.PENDING, "the next batch waits for the canary");
    const aborted = await alice.rollouts.abortRollout({ id: rollout!.id, reason: "changed my mind" });
    assert.equal(aborted.rollout!.status, RolloutStatus.ABORTED);
    assert.equal(aborted.rollout!.reason, "changed my mind");
    assert.deepEqual(
      aborted.rollout!.servers.map((s) => s.state),
      [RolloutServerState.PENDING, RolloutServerState.PENDING],
    );
    const [other] = await rows<{ status: string }>(db, sql`select status from operations where id = ${opId}`);
    assert.equal(other?.status, "RUNNING", "the other operation is not the rollout's to touch");

    // Once the other operation ends, a waiting rollout takes the server.
    const { rollout: third } = await alice.rollouts.startRollout({
      kind: RolloutKind.CONFIGURE,
      target: { serverIds: [busy!.id] },
      strategy: { busyPolicy: BusyServerPolicy.WAIT, maxFailures: { value: { case: "percent", value: 100 } } },
    });
    assert.equal(third!.servers[0]?.state, RolloutServerState.PENDING);
    await db.execute(sql`update operations set status = 'SUCCEEDED', finished_at = now() where id = ${opId}`);
    const done = await watchToEnd(alice, third!.id);
    assert.equal(done.servers[0]!.state, RolloutServerState.FAILED, "it ran (and found no credential)");
    assert.notEqual(done.servers[0]!.operationId, "");
  });

  test("ListRollouts pages newest first and filters by status", async () => {
    const first = await alice.rollouts.listRollouts({ pageSize: 2 });
    assert.equal(first.rollouts.length, 2);
    assert.notEqual(first.nextPageToken, "");
    assert.ok(first.rollouts[0]!.id > first.rollouts[1]!.id);
    assert.equal(first.rollouts[0]!.servers.length, 0, "lists leave servers out");
    const rest = await alice.rollouts.listRollouts({ pageSize: 50, pageToken: first.nextPageToken });
    assert.equal(first.rollouts.length + rest.rollouts.length, 4);
    const aborted = await alice.rollouts.listRollouts({ status: RolloutStatus.ABORTED });
    assert.equal(aborted.rollouts.length, 1);
    await expectCode(alice.rollouts.listRollouts({ pageToken: "garbage" }), Code.InvalidArgument, /^page_token/);
  });

  test(`a rollout to ${FLEET} servers whose children end at once: every child ends, counts add up, each run's history stays bounded`, async () => {
    const clusterId = await insertServers(db, aliceId, "big", FLEET);
    const started = Date.now();
    const { rollout } = await alice.rollouts.startRollout(
      testConnection(clusterId, { canarySize: 1, batchSize: { value: { case: "percent", value: 100 } } }),
    );
    const end = await watchToEnd(alice, rollout!.id);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    assert.equal(end.counts!.total, FLEET);
    assert.equal(end.counts!.failed, FLEET, "every connection test ran and could not log in");
    assert.equal(end.counts!.running + end.counts!.pending + end.counts!.waiting, 0);
    const [ended] = await rows<{ n: number; running: number }>(
      db,
      sql`select count(*)::int as n, count(*) filter (where status = 'RUNNING')::int as running from operations where rollout_id = ${rollout!.id}`,
    );
    assert.deepEqual([ended?.n, ended?.running], [FLEET, 0], "every child ended");
    let runs = await runsOf(harness.client, end.workflowId);
    // The canary's run, then runs of at most SERVERS_PER_RUN children each.
    const expectedRuns = 1 + Math.ceil((FLEET - 1) / SERVERS_PER_RUN);
    for (let i = 0; i < 50 && runs.length < expectedRuns; i++) {
      await new Promise((r) => setTimeout(r, 200));
      runs = await runsOf(harness.client, end.workflowId);
    }
    const longest = Math.max(...runs.map((r) => r.events));
    console.log(`${FLEET}-server rollout: ${seconds} s, ${runs.length} runs, longest history ${longest} events`);
    assert.equal(runs.length, expectedRuns);
    // About 5 events per child (1,924 for a run of 400 measured); Temporal warns from 10,240.
    assert.ok(longest < 10 * SERVERS_PER_RUN, `longest run: ${longest} events`);
  });
});
