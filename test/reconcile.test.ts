import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Client } from "@temporalio/client";
import { and, arrayContains, eq } from "drizzle-orm";
import { createFleetActivities } from "../activities/fleet.js";
import { startServerOperation, type WorkflowGateway } from "../core/operations/provisioning.js";
import { reconcileOperations } from "../core/operations/reconcile.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { auditEvents, operations, servers } from "../db/schema.js";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { ensureReconcilerSchedule, RECONCILER_SCHEDULE_ID } from "../temporal/schedules.js";
import { testCredentialsKey } from "./support/api.js";
import { holdCommand } from "./support/host-gate.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, DOCKER_PREINSTALLED, downHosts, type Fleet, upHosts } from "./support/testhosts.js";
import { activityScheduled } from "./support/workflow-history.js";

const prefix = "precon";

/** A gateway whose client starts nothing and answers nothing: the API process died right after writing the row. */
function deadGateway(harness: ProvisioningHarness): WorkflowGateway {
  const dead = () => Promise.reject(new Error("the API process stopped here"));
  const workflow = { start: dead, getHandle: () => ({ describe: dead, result: dead, cancel: dead }) };
  return { client: { workflow, workflowService: {}, options: harness.client.options } as unknown as Client, taskQueue: harness.taskQueue };
}

/** A gateway whose start reaches Temporal but whose answer is lost (a deadline exceeded on the way back). */
function lostAnswerGateway(harness: ProvisioningHarness): WorkflowGateway {
  const workflow = new Proxy(harness.client.workflow, {
    get(target, prop, receiver) {
      if (prop === "start")
        return async (...args: Parameters<typeof target.start>) => {
          await target.start(...args);
          throw new Error("deadline exceeded");
        };
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const client = new Proxy(harness.client, {
    get: (target, prop, receiver) => (prop === "workflow" ? workflow : Reflect.get(target, prop, receiver)),
  });
  return { client, taskQueue: harness.taskQueue };
}

describe("operations and workflows agree (real Temporal, real host)", { timeout: 20 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let fleet: Fleet;
  let alice: ReturnType<ProvisioningHarness["api"]["clients"]>;
  let owner: { id: string; name: string; role: "admin" };
  let clusterId: string;
  let n = 0;
  const register = async (host: string) =>
    (
      await alice.servers.createServer({
        clusterId,
        name: `rec-${++n}`,
        host,
        credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
      })
    ).server!;
  const rowOf = async (id: string) => (await harness.api.database.db.select().from(operations).where(eq(operations.id, id)))[0]!;
  const waitForRow = async (id: string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const row = await rowOf(id);
      if (row.status !== "RUNNING" || Date.now() > deadline) return row;
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  before(async () => {
    buildImage();
    downHosts(prefix);
    fleet = upHosts(prefix, 1, "fresh", DOCKER_PREINSTALLED);
    harness = await startProvisioningHarness({ sshConnectTimeoutMs: 4000 });
    const created = await harness.api.newOwner();
    owner = { id: created.ownerId, name: "", role: "admin" };
    alice = harness.api.clients(created.token);
    clusterId = (await alice.clusters.createCluster({ name: "reconcile" })).cluster!.id;
  });
  after(async () => {
    await harness?.close();
    downHosts(prefix);
  });

  test("a bootstrap terminated from Temporal: the reconciler schedule records the real outcome and the server can be configured again", async () => {
    const server = await register(fleet.hosts[0]!.ip);
    // The admin_user step is held on the host: the run is terminated in the middle of it.
    const gate = await holdCommand(fleet, fleet.hosts[0]!, "useradd", "/usr/sbin/useradd");
    const started = await alice.servers.configureServer({ id: server.id });
    try {
      await gate.reached;
      await harness.client.workflow.getHandle(started.operation!.workflowId).terminate("operator pressed terminate");
    } finally {
      await gate.release();
    }

    await ensureReconcilerSchedule(harness.client, { intervalSeconds: 3600, taskQueue: harness.taskQueue });
    await harness.client.schedule.getHandle(RECONCILER_SCHEDULE_ID).trigger();
    const row = await waitForRow(started.operation!.id);
    assert.equal(row.status, "FAILED");
    assert.match(row.error ?? "", /terminated: operator pressed terminate/);
    const steps = ((row.result?.steps ?? []) as { name: string; status: string }[]).map((s) => `${s.name}:${s.status}`);
    assert.equal(steps.at(-1), "admin_user:running", "the steps it got through, read from the closed run");

    const stranded = (await alice.servers.getServer({ id: server.id })).server!;
    assert.equal(stranded.status, ServerStatus.ERROR, "no longer PROVISIONING");
    assert.match(stranded.statusReason, /left PROVISIONING with no running operation: the bootstrap operation/);

    // CancelOperation on the ended operation answers its final state, not `internal`.
    const cancelled = await alice.operations.cancelOperation({ id: started.operation!.id });
    assert.equal(cancelled.operation?.status, OperationStatus.FAILED);

    const again = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.notEqual(again.id, started.operation!.id, "a new operation, not the dead one");
    assert.equal(again.status, OperationStatus.SUCCEEDED, again.error);
  });

  test("CancelOperation on an operation whose workflow was terminated answers the final state", async () => {
    const server = await register("10.213.254.254");
    const started = await alice.servers.configureServer({ id: server.id });
    await activityScheduled(harness.client, started.operation!.workflowId, "connect");
    await harness.client.workflow.getHandle(started.operation!.workflowId).terminate("stuck");
    const answer = await alice.operations.cancelOperation({ id: started.operation!.id });
    assert.equal(answer.operation?.status, OperationStatus.FAILED);
    assert.match(answer.operation?.error ?? "", /terminated: stuck/);
  });

  test("RecoverServer right after a bootstrap was terminated: the orphaned row is settled first, not FailedPrecondition", async () => {
    const server = await register("10.213.254.250");
    const started = await alice.servers.configureServer({ id: server.id });
    await activityScheduled(harness.client, started.operation!.workflowId, "connect");
    await harness.client.workflow.getHandle(started.operation!.workflowId).terminate("gone");
    const recovery = await alice.servers.recoverServer({ id: server.id });
    assert.notEqual(recovery.operation?.id, started.operation!.id);
    assert.equal((await rowOf(started.operation!.id)).status, "FAILED");
    await alice.operations.cancelOperation({ id: recovery.operation!.id });
    assert.equal((await watchUntilEnd(alice.operations, recovery.operation!.id)).status, OperationStatus.CANCELLED);
  });

  test("the API dies between writing the row and starting the workflow: the row is reconciled and the server is free", async () => {
    const server = await register("10.213.254.253");
    await assert.rejects(
      startServerOperation(harness.api.database.db, deadGateway(harness), owner, server.id, "deploy_key", { action: "add" }),
    );
    const [orphan] = await harness.api.database.db.select().from(operations).where(eq(operations.serverId, server.id));
    assert.ok(orphan);
    assert.equal(orphan.status, "RUNNING", "nothing could be asked: the row is left to the reconciler");

    // Within the grace period a row without a workflow is left alone (its start may still land).
    await reconcileOperations(harness.api.database.db, harness.client, { missingGraceMs: 60_000 });
    assert.equal((await rowOf(orphan.id)).status, "RUNNING");
    const report = await reconcileOperations(harness.api.database.db, harness.client, { missingGraceMs: 0 });
    assert.ok(report.settled.some((s) => s.operationId === orphan.id && s.status === "FAILED"));
    assert.match((await rowOf(orphan.id)).error ?? "", /never started/);
    const audited = await harness.api.database.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "operation.settled"), arrayContains(auditEvents.targetIds, [orphan.id])));
    assert.deepEqual(
      audited.map((e) => [e.actorName, e.targetIds, e.detail]),
      [["reconciler", [orphan.id, server.id], "FAILED"]],
      "the reconciler's change is on record",
    );

    const next = await watchUntilEnd(alice.operations, (await alice.servers.setupDeployKey({ id: server.id })).operation!.id);
    assert.equal(next.status, OperationStatus.SUCCEEDED, next.error);
  });

  test("a start that timed out although Temporal started it: the operation keeps running and ends with its real outcome", async () => {
    const server = await register("10.213.254.252");
    const { operation } = await startServerOperation(harness.api.database.db, lostAnswerGateway(harness), owner, server.id, "deploy_key", {
      action: "add",
    });
    assert.equal(operation.status, "RUNNING", "not marked FAILED while its workflow runs");
    assert.ok(operation.runId, "the run id comes from Temporal");
    const done = await watchUntilEnd(alice.operations, operation.id);
    assert.equal(done.status, OperationStatus.SUCCEEDED, done.error);
  });

  test("the fleet check stopped between opening an operation and starting its child: reconciled, the server is free", async () => {
    const server = await register("10.213.254.251");
    const activities = createFleetActivities({
      db: harness.api.database.db,
      cipher: createCredentialsCipher(testCredentialsKey),
      adminUser: "axion",
      sshConnectTimeoutMs: 4000,
    });
    const opened = await activities.openOperation({ serverId: server.id, kind: "recovery" });
    assert.ok(opened);
    await reconcileOperations(harness.api.database.db, harness.client, { missingGraceMs: 0 });
    assert.equal((await rowOf(opened.operationId)).status, "FAILED");
    // A server stranded in PROVISIONING by such an orphan is repaired too.
    await harness.api.database.db.update(servers).set({ status: "PROVISIONING" }).where(eq(servers.id, server.id));
    await reconcileOperations(harness.api.database.db, harness.client, { missingGraceMs: 0 });
    const repaired = (await alice.servers.getServer({ id: server.id })).server!;
    assert.equal(repaired.status, ServerStatus.ERROR);
    assert.match(repaired.statusReason, /the recovery operation .* ended FAILED \(the workflow was never started/);
  });
});
