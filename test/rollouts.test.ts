import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import type { Client } from "@temporalio/client";
import { sql } from "drizzle-orm";
import { sqlState } from "../core/kernel/db-errors.js";
import { reconcileOperations } from "../core/operations/reconcile.js";
import { normaliseStrategy } from "../core/rollouts/rollout-strategy.js";
import { createRollout } from "../core/rollouts/rollouts.js";
import { type Cidr, createNetworkPolicy, parseCidr } from "../core/security/network-policy.js";
import type { Database } from "../db/client.js";
import { newId } from "../db/ids.js";
import { RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { BusyServerPolicy, type Rollout, RolloutServerState, RolloutStatus } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ensureHeartbeatMonitor, HEARTBEAT_MONITOR_ID } from "../temporal/heartbeat-monitor.js";
import { ensureReconcilerSchedule, RECONCILER_SCHEDULE_ID } from "../temporal/schedules.js";
import { ROLLOUT_ALREADY_ENDED, rolloutWorkflow } from "../workflows/rollout.js";
import { expectCode } from "./support/assertions.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { type SilentHost, startSilentHost } from "./support/silent-host.js";

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

/** Silent hosts listen on 127.0.0.2 (loopback stays refused everywhere else); 127.0.0.1 stays refused for the database-only servers. */
const silentHostsAllowed = createNetworkPolicy({ allow: ["127.0.0.2/32", "0.0.0.0/0", "::/0"].map((c) => parseCidr(c) as Cidr) });

/** A one-batch connection-test rollout's workflow input, without its id and size. */
const rolloutInput = {
  kind: "test_connection",
  hasCanary: false,
  failureBudget: 1,
  batchPauseSeconds: 0,
  pauseAfterCanary: false,
  busyPolicy: "skip",
  busyWaitSeconds: 0,
} as const;

/** The outbox events of one rollout, in order. */
const eventsOf = async (db: Database, rolloutId: string) =>
  (await rows<{ type: string }>(db, sql`select type from outbox_events where key = ${rolloutId} order by created_at, id`)).map(
    (e) => e.type,
  );

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
  const silentHosts: SilentHost[] = [];
  before(async () => {
    // PostgreSQL, not in-process PGlite: thousands of children's activities would queue on this process' event loop.
    postgres = await startPostgres();
    // A connect to a silent host hangs this long per attempt; with the retries' pauses a configure child runs about 30 s.
    harness = await startProvisioningHarness({
      sshConnectTimeoutMs: 5000,
      maxServersPerOwner: 5000,
      databaseUrl: postgres.url,
      networkPolicy: silentHostsAllowed,
      // A test-connection rollout is charged one connection test per server: the fleet test probes FLEET at once,
      // after the file's other tests (one owner throughout) have spent some of the same bucket.
      limits: { connectionTests: { burst: 2 * FLEET, perMinute: 10 } },
    });
    db = harness.api.database.db;
    const owner = await harness.api.newOwner("rollout-alice");
    alice = harness.api.clients(owner.token);
    aliceId = owner.ownerId;
  });
  after(async () => {
    await harness?.close();
    await Promise.all(silentHosts.map((h) => h.close()));
    await postgres?.stop();
  });

  /** A cluster of `n` servers on silent hosts, in name order: a configure child stays in its connect step until cancelled. */
  async function silentCluster(clients: Clients, name: string, n: number): Promise<{ clusterId: string; hosts: SilentHost[] }> {
    const clusterId = (await clients.clusters.createCluster({ name })).cluster!.id;
    const hosts: SilentHost[] = [];
    for (let i = 1; i <= n; i++) {
      const host = await startSilentHost();
      silentHosts.push(host);
      hosts.push(host);
      await clients.servers.createServer({
        clusterId,
        name: `${name}-${i}`,
        host: host.host,
        sshPort: host.port,
        credential: { method: { case: "password", value: "never-gets-that-far" } },
      });
    }
    return { clusterId, hosts };
  }

  /** Configure over three silent hosts in batches of two; answers once both children of the first batch are connecting. */
  async function rolloutStuckInFirstBatch(clients: Clients, name: string): Promise<Rollout> {
    const { clusterId, hosts } = await silentCluster(clients, name, 3);
    const { rollout } = await clients.rollouts.startRollout({
      kind: RolloutKind.CONFIGURE,
      target: { clusterId },
      strategy: {
        canarySize: 0,
        batchSize: { value: { case: "count", value: 2 } },
        maxFailures: { value: { case: "percent", value: 100 } },
      },
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [claimed] = await rows<{ n: number }>(
        db,
        sql`select count(*)::int as n from operations where rollout_id = ${rollout!.id} and status = 'RUNNING' and run_id is not null`,
      );
      if (claimed?.n === 2 && hosts[0]!.accepted() > 0 && hosts[1]!.accepted() > 0) return rollout!;
      if (Date.now() > deadline) assert.fail(`the first batch of ${name} did not start connecting: ${claimed?.n} children claimed`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Every operation of a rollout, in rollout order. */
  const operationsOf = (rolloutId: string) =>
    rows<{ status: string; error: string | null; workflow_id: string; run_id: string }>(
      db,
      sql`select o.status, o.error, o.workflow_id, o.run_id from rollout_servers rs join operations o on o.id = rs.operation_id
        where rs.rollout_id = ${rolloutId} order by rs.position`,
    );

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
      aborted.rollout!.servers.map((s) => [s.state, s.reason]),
      Array(2).fill([RolloutServerState.NOT_REACHED, "not reached: aborted before batch 1 of 2 — changed my mind"]),
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

  test("a rollout whose workflow is cancelled from Temporal (not AbortRollout) ends ABORTED once its children have stopped, with one event", async () => {
    const carol = harness.api.clients((await harness.api.newOwner("rollout-carol")).token);
    const rollout = await rolloutStuckInFirstBatch(carol, "cancelled");
    const handle = harness.client.workflow.getHandle(rollout.workflowId);
    await handle.cancel();
    await assert.rejects(handle.result());
    assert.equal((await handle.describe()).status.name, "CANCELLED", "Temporal shows the run cancelled");

    const ended = (await carol.rollouts.getRollout({ id: rollout.id })).rollout!;
    assert.equal(ended.status, RolloutStatus.ABORTED);
    assert.match(ended.reason, /cancelled \(a Temporal cancellation request, not AbortRollout\)/);
    assert.deepEqual(
      ended.servers.map((s) => [s.state, s.reason]),
      [
        [RolloutServerState.CANCELLED, "cancelled during step connect"],
        [RolloutServerState.CANCELLED, "cancelled during step connect"],
        [RolloutServerState.NOT_REACHED, `not reached: aborted after batch 1 of 2 — ${ended.reason}`],
      ],
    );
    // Each child stopped through its own cancellation: its connect step was cut, it recorded CANCELLED, its run closed cancelled.
    const ops = await operationsOf(rollout.id);
    assert.deepEqual(
      ops.map((o) => [o.status, o.error]),
      [
        ["CANCELLED", "cancelled during step connect"],
        ["CANCELLED", "cancelled during step connect"],
      ],
    );
    for (const op of ops)
      assert.equal((await harness.client.workflow.getHandle(op.workflow_id, op.run_id).describe()).status.name, "CANCELLED");
    assert.deepEqual(await eventsOf(db, rollout.id), ["rollout.started", "rollout.aborted"]);
    await reconcileOperations(db, harness.client);
    assert.deepEqual(await eventsOf(db, rollout.id), ["rollout.started", "rollout.aborted"], "a reconciler pass adds nothing");
  });

  test("a rollout whose workflow is terminated: its children are cancelled, and one reconciler pass ends it FAILED with what happened", async () => {
    const carol = harness.api.clients((await harness.api.newOwner("rollout-carol-2")).token);
    const rollout = await rolloutStuckInFirstBatch(carol, "terminated");
    await harness.client.workflow.getHandle(rollout.workflowId).terminate("pulled from the Web UI");
    // The parent-close policy cancels the children; each records its own end.
    const deadline = Date.now() + 60_000;
    while ((await operationsOf(rollout.id)).some((o) => o.status === "RUNNING")) {
      if (Date.now() > deadline) assert.fail("the terminated rollout's children did not stop");
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(
      (await carol.rollouts.getRollout({ id: rollout.id })).rollout!.status,
      RolloutStatus.RUNNING,
      "nothing in the workflow ran",
    );

    const report = await reconcileOperations(db, harness.client);
    assert.deepEqual(
      report.settledRollouts.filter((r) => r.rolloutId === rollout.id),
      [{ rolloutId: rollout.id, status: "FAILED" }],
    );
    const ended = (await carol.rollouts.getRollout({ id: rollout.id })).rollout!;
    assert.equal(ended.status, RolloutStatus.FAILED);
    assert.equal(ended.reason, "the workflow was terminated: pulled from the Web UI");
    assert.deepEqual(
      ended.servers.map((s) => [s.state, s.reason]),
      [
        [RolloutServerState.CANCELLED, "cancelled during step connect"],
        [RolloutServerState.CANCELLED, "cancelled during step connect"],
        [
          RolloutServerState.NOT_REACHED,
          "not reached: the rollout ended FAILED after batch 1 of 2 — the workflow was terminated: pulled from the Web UI",
        ],
      ],
    );
    assert.ok(ended.finishTime, "the end is recorded");
    await reconcileOperations(db, harness.client);
    assert.deepEqual(await eventsOf(db, rollout.id), ["rollout.started", "rollout.failed"], "one end, one event");
  });

  test("a rollout whose workflow never started is FAILED by the reconciler after the grace period; a start that arrives later does nothing", async () => {
    const dora = await harness.api.newOwner("rollout-dora");
    const clusterId = await insertServers(db, dora.ownerId, "late", 1);
    const [server] = await rows<{ id: string; name: string }>(db, sql`select id, name from servers where cluster_id = ${clusterId}`);
    // The API process stopped between writing the rollout and starting its workflow.
    const row = await createRollout(db, {
      id: newId(),
      ownerId: dora.ownerId,
      kind: "test_connection",
      target: { clusterId },
      strategy: { ...normaliseStrategy(undefined) },
      options: {},
      servers: [{ ...server!, batch: 0 }],
      batchCount: 1,
    });
    assert.deepEqual((await reconcileOperations(db, harness.client)).settledRollouts, [], "its start may still be on the way");
    const report = await reconcileOperations(db, harness.client, { missingGraceMs: 0 });
    assert.deepEqual(report.settledRollouts, [{ rolloutId: row.id, status: "FAILED" }]);
    const ended = (await harness.api.clients(dora.token).rollouts.getRollout({ id: row.id })).rollout!;
    assert.equal(ended.status, RolloutStatus.FAILED);
    assert.match(ended.reason, /^no workflow found: it was never started/);
    assert.deepEqual(
      ended.servers.map((s) => [s.state, s.reason]),
      [[RolloutServerState.NOT_REACHED, `not reached: the rollout ended FAILED before batch 1 of 1 — ${ended.reason}`]],
    );

    const late = await harness.client.workflow.execute(rolloutWorkflow, {
      workflowId: row.workflowId,
      taskQueue: harness.taskQueue,
      args: [{ ...rolloutInput, rolloutId: row.id, total: 1, batchCount: 1 }],
    });
    assert.deepEqual(late, { status: "FAILED", reason: ROLLOUT_ALREADY_ENDED });
    const [opened] = await rows<{ n: number }>(db, sql`select count(*)::int as n from operations where rollout_id = ${row.id}`);
    assert.equal(opened?.n, 0, "no server was touched");
    assert.deepEqual(await eventsOf(db, row.id), ["rollout.started", "rollout.failed"]);
  });

  test("a rollout server names an existing operation or none: the database refuses a dangling operation id", async () => {
    const [linked] = await rows<{ rollout_id: string; position: number }>(
      db,
      sql`select rollout_id, position from rollout_servers where operation_id is not null limit 1`,
    );
    assert.ok(linked, "an earlier test left a linked rollout server");
    await assert.rejects(
      db.execute(
        sql`update rollout_servers set operation_id = gen_random_uuid() where rollout_id = ${linked.rollout_id} and position = ${linked.position}`,
      ),
      (error) =>
        sqlState(error) === "23503" &&
        /rollout_servers_operation_id_operations_id_fk/.test(String((error as { cause?: unknown }).cause ?? error)),
    );
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
  test("the Web UI: each operation names its server in its summary; the documented query leaves the housekeeping workflows out", async () => {
    const client = harness.client;
    // Housekeeping: one triggered run of the reconciler's schedule, and the liveness monitor.
    await ensureReconcilerSchedule(client, { intervalSeconds: 3600, taskQueue: harness.taskQueue });
    const schedule = client.schedule.getHandle(RECONCILER_SCHEDULE_ID);
    await ensureHeartbeatMonitor(client, harness.taskQueue, {
      timeoutSeconds: 3600,
      intervalSeconds: 3600,
      recoverOffline: false,
      maxOfflineRecoveries: 1,
      metricsRetentionHours: 1,
      outboxRetentionHours: 24,
      ingestionProgressRetentionHours: 24,
    });
    try {
      await schedule.trigger();
      const clusterId = await insertServers(db, aliceId, "webui", 2);
      const servers = await rows<{ id: string; name: string }>(db, sql`select id, name from servers where cluster_id = ${clusterId}`);
      const nameOf = new Map(servers.map((s) => [s.id, s.name]));
      const single = await alice.servers.testServerConnection({ id: servers[0]!.id });
      const rollout = (await alice.rollouts.startRollout(testConnection(clusterId))).rollout!;
      await watchToEnd(alice, rollout.id);
      const [rolloutRow] = await rows<{ workflow_id: string }>(db, sql`select workflow_id from rollouts where id = ${rollout.id}`);
      const children = await rows<{ workflow_id: string; server_id: string; id: string }>(
        db,
        sql`select o.workflow_id, o.server_id, o.id from operations o where o.rollout_id = ${rollout.id}`,
      );
      assert.equal(children.length, 2);

      const singleRun = await client.workflow.getHandle(single.operation!.workflowId).describe();
      assert.equal(await singleRun.staticSummary(), `test connection ${servers[0]!.name}`);
      assert.match(
        (await singleRun.staticDetails()) ?? "",
        new RegExp(`^server ${servers[0]!.name} \\(${servers[0]!.id}\\) at 127\\.0\\.0\\.1:\\d+, operation `),
      );
      for (const child of children) {
        const described = await client.workflow.getHandle(child.workflow_id).describe();
        assert.equal(await described.staticSummary(), `test connection ${nameOf.get(child.server_id)} (rollout ${rollout.id})`);
        assert.match((await described.staticDetails()) ?? "", new RegExp(`, operation ${child.id}$`));
      }

      const ids = async (query: string) => {
        const found = new Set<string>();
        for await (const execution of client.workflow.list({ query })) found.add(execution.workflowId);
        return found;
      };
      // Visibility is indexed asynchronously: wait until what was started is listed (once listed, it stays).
      const indexed = async (query: string, expected: (found: Set<string>) => boolean) => {
        const deadline = Date.now() + 30_000;
        for (;;) {
          const found = await ids(query);
          if (expected(found)) return found;
          if (Date.now() > deadline) assert.fail(`${query} lists only ${[...found].join(", ")}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      };
      const isReconcilerRun = (id: string) => id.startsWith(`${RECONCILER_SCHEDULE_ID}-`);
      await indexed(`AxionWorkflowRole = "housekeeping"`, (f) => f.has(HEARTBEAT_MONITOR_ID) && [...f].some(isReconcilerRun));
      const operationIds = [single.operation!.workflowId, rolloutRow!.workflow_id, ...children.map((c) => c.workflow_id)];
      // The query docs/observability.md gives operators.
      const shown = await indexed(`AxionWorkflowRole != "housekeeping"`, (f) => operationIds.every((id) => f.has(id)));
      assert.ok(!shown.has(HEARTBEAT_MONITOR_ID), "the liveness monitor is left out");
      assert.ok(![...shown].some(isReconcilerRun), "the reconciler's scheduled runs are left out");
      // The server's name is a column operators can add to the list, and a filter.
      const byName = await indexed(`AxionServerName = "${servers[0]!.name}"`, (f) => f.has(single.operation!.workflowId));
      const itsChild = children.find((c) => c.server_id === servers[0]!.id)!;
      assert.deepEqual([...byName].sort(), [single.operation!.workflowId, itsChild.workflow_id].sort());
    } finally {
      await schedule.delete();
      await client.workflow.getHandle(HEARTBEAT_MONITOR_ID).terminate("test over");
    }
  });
});
