import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { BusyServerPolicy, type Rollout, RolloutServerState, RolloutStatus } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";

const rows = async <T>(db: Database, query: ReturnType<typeof sql>): Promise<T[]> => {
  const result = (await db.execute(query)) as unknown as T[] | { rows: T[] };
  return Array.isArray(result) ? result : result.rows;
};

/** `n` servers that exist only in the database (no credential, loopback refused by policy): each operation ends at once. */
async function insertServers(db: Database, ownerId: string, cluster: string, n: number): Promise<string> {
  const [row] = await rows<{ id: string }>(
    db,
    sql`with c as (insert into clusters (id, owner_id, name) values (gen_random_uuid(), ${ownerId}, ${cluster}) returning id)
      insert into servers (id, owner_id, cluster_id, name, host, ssh_port, auth_method)
      select gen_random_uuid(), ${ownerId}, c.id, ${cluster} || '-' || lpad(i::text, 5, '0'), '127.0.0.1', 2000 + i, 'private_key'
      from c, generate_series(1, ${n}) as i returning cluster_id as id`,
  );
  return (row as { id: string }).id;
}

describe("a rollout keeps its batch's servers in flight (real Temporal, no hosts)", { timeout: 5 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let postgres: TestPostgres;
  before(async () => {
    postgres = await startPostgres();
    harness = await startProvisioningHarness({ sshConnectTimeoutMs: 2000, databaseUrl: postgres.url });
  });
  after(async () => {
    await harness?.close();
    await postgres?.stop();
  });

  test("one slow server of a 60-server batch holds back none of the others: all of them end while it still waits", async () => {
    const db = harness.api.database.db;
    const owner = await harness.api.newOwner("window-owner");
    const clients = harness.api.clients(owner.token);
    const clusterId = await insertServers(db, owner.ownerId, "window", 60);
    // The first server (in target order) is busy with an operation of its own: the rollout waits for it.
    const [busy] = await rows<{ id: string }>(db, sql`select id from servers where cluster_id = ${clusterId} order by name limit 1`);
    const busyOp = "0193a000-0000-7000-8000-00000000c0de";
    await db.execute(sql`insert into operations (id, owner_id, server_id, kind, workflow_id, run_id)
      values (${busyOp}, ${owner.ownerId}, ${busy!.id}, 'bootstrap', ${`bootstrap/${busy!.id}`}, 'elsewhere')`);

    const { rollout } = await clients.rollouts.startRollout({
      kind: RolloutKind.CONFIGURE,
      target: { clusterId },
      strategy: {
        canarySize: 0,
        batchSize: { value: { case: "percent", value: 100 } },
        maxFailures: { value: { case: "percent", value: 100 } },
        busyPolicy: BusyServerPolicy.WAIT,
        busyWaitTimeout: { seconds: 600n, nanos: 0 },
      },
    });
    let seen: Rollout | undefined;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      seen = (await clients.rollouts.getRollout({ id: rollout!.id })).rollout!;
      if (seen.counts!.failed === 59) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(seen?.servers[0]?.state, RolloutServerState.WAITING, "the busy server is still waited for");
    assert.equal(seen?.counts?.failed, 59, "every other server ran (and found no credential) meanwhile");
    assert.equal(seen?.counts?.pending, 0);

    const aborted = await clients.rollouts.abortRollout({ id: rollout!.id, reason: "done measuring" });
    assert.equal(aborted.rollout!.status, RolloutStatus.ABORTED);
    await db.execute(sql`update operations set status = 'SUCCEEDED', finished_at = now() where id = ${busyOp}`);
  });
});
