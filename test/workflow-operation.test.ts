// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { WorkflowFailedError } from "@temporalio/client";
import { ApplicationFailure, CancelledFailure } from "@temporalio/common";
import type { Activities } from "../activities/index.js";
import { sshFailure } from "../activities/ssh/errors.js";
import { setServerStatus } from "../core/inventory/server-status.js";
import { finishOperation, startOperation } from "../core/operations/operations.js";
import { startServerOperation } from "../core/operations/provisioning.js";
import { deployKeyWorkflow } from "../workflows/deploy-key.js";
import { FailureType, SshErrorType } from "../workflows/failure-types.js";
import { seedFleet } from "./support/workflow-fleet.js";
import { HeldStep, hostSteps, operationRow, serverEvents, serverRow } from "./support/workflow-steps.js";
import { startWorkflowTestbed, type WorkflowTestbed } from "./support/workflow-testbed.js";

/**
 * The frame every server operation runs in (workflows/operation.ts), through the real deploy-key
 * and bootstrap workflows on the time-skipping server: the operation and server rows are real
 * (PGlite), the SSH steps are stand-ins.
 */
describe("operation wrapper (time-skipping)", () => {
  let bed: WorkflowTestbed;
  before(async () => {
    bed = await startWorkflowTestbed();
  });
  after(async () => {
    await bed?.close();
  });

  const gateway = () => ({ client: bed.env.client, taskQueue: bed.taskQueue });

  async function oneServer() {
    const fleet = await seedFleet(bed.database.db, 1);
    return { owner: fleet.owner, serverId: fleet.servers[0]!.id };
  }

  /** A deploy key whose SSH step fails with `failure` every time it runs; returns what is left behind. */
  async function deployKeyFailing(failure: (serverId: string) => Promise<Error>) {
    const { owner, serverId } = await oneServer();
    let attempts = 0;
    const overrides: Partial<Activities> = {
      setDeployKey: async ({ serverId: id }) => {
        attempts++;
        throw await failure(id);
      },
    };
    return bed.withWorker(overrides, async () => {
      const before = await serverRow(bed.database.db, serverId);
      const { operation, handle } = await startServerOperation(bed.database.db, gateway(), owner, serverId, "deploy_key", {
        action: "add",
      });
      await assert.rejects(handle.result(), WorkflowFailedError);
      return {
        before,
        server: await serverRow(bed.database.db, serverId),
        operation: await operationRow(bed.database.db, operation.id),
        attempts,
      };
    });
  }

  test("a row that ended before its workflow started: the workflow does nothing, no step runs", { timeout: 60_000 }, async () => {
    const { owner, serverId } = await oneServer();
    const steps: string[] = [];
    const overrides: Partial<Activities> = {
      setDeployKey: async () => {
        steps.push("setDeployKey");
        return { changed: true, detail: "added" };
      },
    };
    await bed.withWorker(overrides, async () => {
      // The reconciler (or the starter giving up) ended the row before the workflow got going.
      const row = await startOperation(bed.database.db, owner, serverId, "deploy_key");
      await finishOperation(bed.database.db, row.id, { status: "FAILED", error: "the workflow could not be started" });
      const eventsBefore = (await serverEvents(bed.database.db, serverId)).length;
      const handle = await bed.env.client.workflow.start(deployKeyWorkflow, {
        workflowId: row.workflowId,
        taskQueue: bed.taskQueue,
        args: [{ operationId: row.id, serverId, action: "add" }],
      });
      await assert.rejects(handle.result(), (error: WorkflowFailedError) => {
        assert.match(String((error.cause as Error)?.message), /is no longer running: nothing was done/);
        return true;
      });
      assert.deepEqual(steps, [], "no step ran");
      const after = await operationRow(bed.database.db, row.id);
      assert.equal(after.status, "FAILED");
      assert.equal(after.error, "the workflow could not be started", "the row keeps the end it had");
      assert.equal((await serverEvents(bed.database.db, serverId)).length, eventsBefore, "nothing recorded for the server");
    });
  });

  test("SSH unreachable after every retry: server UNREACHABLE with the reason; operation FAILED with the message", {
    timeout: 60_000,
  }, async () => {
    const left = await deployKeyFailing(async () => sshFailure(SshErrorType.Unreachable, "SSH connection failed (EHOSTUNREACH)"));
    assert.equal(left.attempts, 4, "1 try + 3 retries");
    assert.equal(left.server.status, "UNREACHABLE");
    assert.equal(left.server.statusReason, "SSH failed after retries: SSH connection failed (EHOSTUNREACH)");
    assert.equal(left.operation.status, "FAILED");
    assert.equal(left.operation.error, "SSH connection failed (EHOSTUNREACH)");
  });

  test("a remote command that fails: server ERROR naming the operation; operation FAILED with the message", {
    timeout: 60_000,
  }, async () => {
    const left = await deployKeyFailing(async () => sshFailure(SshErrorType.CommandFailed, "authorized_keys is read-only"));
    assert.equal(left.server.status, "ERROR");
    assert.equal(left.server.statusReason, "deploy_key failed: authorized_keys is read-only");
    assert.equal(left.operation.status, "FAILED");
    assert.equal(left.operation.error, "authorized_keys is read-only");
  });

  test("a host key mismatch keeps the HOSTKEY_MISMATCH the SSH layer set; the operation is FAILED", { timeout: 60_000 }, async () => {
    const left = await deployKeyFailing(async (serverId) => {
      // What activities/server-access.ts does when the host presents another key.
      await setServerStatus(bed.database.db, serverId, "HOSTKEY_MISMATCH", "host key changed", { by: "host_key_check" });
      return sshFailure(SshErrorType.HostKeyMismatch, "the host key differs from the pinned one; connection refused");
    });
    assert.equal(left.attempts, 1, "never retried");
    assert.equal(left.server.status, "HOSTKEY_MISMATCH");
    assert.equal(left.server.statusReason, "host key changed");
    assert.equal(left.operation.status, "FAILED");
    assert.equal(left.operation.error, "the host key differs from the pinned one; connection refused");
  });

  test("a server that is gone (ServerNotFound) keeps its status; the operation is FAILED", { timeout: 60_000 }, async () => {
    const left = await deployKeyFailing(async (serverId) =>
      ApplicationFailure.nonRetryable(`server ${serverId} not found`, FailureType.ServerNotFound),
    );
    assert.equal(left.attempts, 1);
    assert.equal(left.server.status, left.before.status);
    assert.equal(left.server.statusReason, left.before.statusReason);
    assert.equal(left.operation.status, "FAILED");
    assert.match(left.operation.error ?? "", /not found/);
  });

  test("cancelled during a step: the step hears it, server ERROR naming the step, operation CANCELLED, each recorded once", {
    timeout: 60_000,
  }, async () => {
    const { owner, serverId } = await oneServer();
    const docker = new HeldStep();
    const overrides: Partial<Activities> = { ...hostSteps(), ensureDocker: docker.activity as Activities["ensureDocker"] };
    await bed.withWorker(overrides, async () => {
      const { operation, handle } = await startServerOperation(bed.database.db, gateway(), owner, serverId, "bootstrap");
      await docker.started;
      assert.equal((await serverRow(bed.database.db, serverId)).status, "PROVISIONING");
      await handle.cancel();
      await assert.rejects(handle.result(), (error: WorkflowFailedError) => error.cause instanceof CancelledFailure);
      assert.equal(docker.cancelled, 1, "the running step heard the cancellation");
      const server = await serverRow(bed.database.db, serverId);
      assert.equal(server.status, "ERROR");
      assert.equal(server.statusReason, "bootstrap cancelled during step docker; run it again to finish");
      const row = await operationRow(bed.database.db, operation.id);
      assert.equal(row.status, "CANCELLED");
      assert.equal(row.error, "cancelled during step docker");
      const events = await serverEvents(bed.database.db, serverId);
      const ended = events.filter((e) => e.type === "operation.failed" || e.type === "operation.finished");
      assert.deepEqual(
        ended.map((e) => e.payload.status),
        ["CANCELLED"],
        "the operation's end is told once",
      );
      const toError = events.filter((e) => e.type === "server.status_changed" && e.payload.to === "ERROR");
      assert.equal(toError.length, 1, "the server went ERROR once");
    });
  });
});
