import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Client } from "@temporalio/client";
import { sql } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { ensureHeartbeatMonitor, HEARTBEAT_MONITOR_ID } from "../temporal/heartbeat-monitor.js";
import type { fleetCheckWorkflow } from "../workflows/fleet-check.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";

const FLEET = 1000;
const PAGE = 50;

/** FLEET servers that exist only in the database (no credential: every check answers "unreachable" at once). */
async function insertFleet(db: Database, name: string, status: string): Promise<void> {
  await db.execute(sql`
    with o as (insert into owners (id, name) values (gen_random_uuid(), ${name}) returning id),
    c as (insert into clusters (id, owner_id, name) select gen_random_uuid(), o.id, 'big' from o returning id, owner_id)
    insert into servers (id, owner_id, cluster_id, name, host, ssh_port, auth_method, status)
    select gen_random_uuid(), c.owner_id, c.id, 'srv-' || i, '192.0.2.' || (i % 250), 1000 + i, 'private_key', ${status}
    from c, generate_series(1, ${FLEET}) as i`);
}

/** Every run of a workflow id (the chain of continue-as-new) with its history length. */
async function runsOf(client: Client, workflowId: string): Promise<{ runId: string; events: number; children: number }[]> {
  const runs: { runId: string; events: number; children: number }[] = [];
  for await (const execution of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
    const history = await client.workflow.getHandle(workflowId, execution.runId).fetchHistory();
    const events = history.events ?? [];
    runs.push({
      runId: execution.runId,
      events: events.length,
      children: events.filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes).length,
    });
  }
  return runs;
}

describe("histories stay bounded for a fleet far larger than a page", { timeout: 10 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  before(async () => {
    harness = await startProvisioningHarness({ sshConnectTimeoutMs: 2000 });
  });
  after(async () => {
    await harness?.close();
  });

  test("the fleet check pages through 1,000 servers 50 at a time, one run per page, and reaches every server", async () => {
    await insertFleet(harness.api.database.db, "fleet-owner", "CONFIGURED");
    const workflowId = "fleet-check-bounded";
    const report = await harness.client.workflow.execute<typeof fleetCheckWorkflow>("fleetCheckWorkflow", {
      workflowId,
      taskQueue: harness.taskQueue,
      args: [{ pageSize: PAGE, concurrency: 25 }],
    });
    let runs = await runsOf(harness.client, workflowId);
    for (let i = 0; i < 50 && runs.length < (report.pages ?? 1); i++) {
      await new Promise((r) => setTimeout(r, 200));
      runs = await runsOf(harness.client, workflowId);
    }
    const longest = Math.max(...runs.map((r) => r.events));
    // A page of 50 checks is a few hundred events; the whole fleet in one run would be thousands.
    assert.ok(longest < PAGE * 12, `longest run: ${longest} events`);
    assert.ok(report.pages >= FLEET / PAGE, `pages: ${report.pages}`);
    assert.equal(runs.length, report.pages);
    assert.equal(report.checked, FLEET);
    assert.equal(report.unreachable, FLEET);
  });

  test("a mass outage starts recoveries at most N at a time, and the monitor starts no children", async () => {
    const db = harness.api.database.db;
    await insertFleet(db, "outage-owner", "ONLINE");
    await db.execute(sql`
      insert into agents (server_id, token_hash, last_heartbeat_at)
      select s.id, encode(sha256(s.id::text::bytea), 'hex'), now() - interval '10 minutes'
      from servers s join owners o on o.id = s.owner_id where o.name = 'outage-owner'`);
    // Ingestion has been running all along: the silence counts.
    await db.execute(sql`update ingestion_progress set running_since = now() - interval '1 hour'`);
    const maxRunning = 5;
    await ensureHeartbeatMonitor(harness.client, harness.taskQueue, {
      timeoutSeconds: 30,
      intervalSeconds: 1,
      recoverOffline: true,
      maxOfflineRecoveries: maxRunning,
      metricsRetentionHours: 24,
      outboxRetentionHours: 24,
      ingestionProgressRetentionHours: 24,
    });
    // Recoveries at once, from their rows' start and end times (not sampled: a short one cannot pass unseen).
    const peakRecoveries = async () => {
      const rows = (
        (await db.execute(
          sql`select started_at as "startedAt", coalesce(finished_at, now()) as "finishedAt" from operations where kind = 'recovery'`,
        )) as unknown as { rows: { startedAt: Date | string; finishedAt: Date | string }[] }
      ).rows;
      // An end sorts before a start at the same instant: a slot freed and taken again is not two at once.
      const changes = rows
        .flatMap((r) => [
          [new Date(r.startedAt).getTime(), 1],
          [new Date(r.finishedAt).getTime(), -1],
        ])
        .sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
      let now = 0;
      let peak = 0;
      for (const [, change] of changes) {
        now += change!;
        peak = Math.max(peak, now);
      }
      return peak;
    };
    // Went OFFLINE (and some of them on to what their recovery found): none is ONLINE any more.
    const stillOnline = async () =>
      Number(
        ((await db.execute(sql`select count(*)::int as n from servers where status = 'ONLINE'`)) as unknown as { rows?: { n: number }[] })
          .rows?.[0]?.n,
      );
    await new Promise((r) => setTimeout(r, 8_000));
    assert.equal(await stillOnline(), 0, "the whole fleet went OFFLINE");
    const peak = await peakRecoveries();
    assert.ok(peak > 0, "recoveries were started");
    assert.ok(peak <= maxRunning, `at most ${maxRunning} recoveries at once, saw ${peak}`);
    const runs = await runsOf(harness.client, HEARTBEAT_MONITOR_ID);
    assert.equal(
      runs.reduce((n, r) => n + r.children, 0),
      0,
      "recoveries are not children of the monitor",
    );
    const longest = Math.max(...runs.map((r) => r.events));
    assert.ok(longest < 200, `longest monitor run: ${longest} events`);
    await harness.client.workflow.getHandle(HEARTBEAT_MONITOR_ID).terminate("test over");
  });
});
