// test lane: fast
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Context } from "@temporalio/activity";
import { WorkflowFailedError } from "@temporalio/client";
import { eq } from "drizzle-orm";
import type { Activities } from "../activities/index.js";
import { sshFailure } from "../activities/ssh/errors.js";
import { startServerOperation } from "../core/operations/provisioning.js";
import { servers } from "../db/schema.js";
import { SshErrorType } from "../workflows/failure-types.js";
import { seedFleet } from "./support/workflow-fleet.js";
import { hostSteps, operationRow, serverRow } from "./support/workflow-steps.js";
import { startWorkflowTestbed, type WorkflowTestbed } from "./support/workflow-testbed.js";

const MINUTE = 60_000;

/** The workflow clock of the running activity (the time-skipping server's, which jumps over timers). */
const workflowNow = () => Context.current().info.currentAttemptScheduledTimestampMs;

/**
 * A provider whose rebuild task finishes `rebuildMs` after it was requested, and a host that
 * answers SSH `bootMs` after that; both measured on the workflow clock, so hours pass in
 * milliseconds. Every poll and connection attempt is recorded with its workflow time.
 */
class RebuildingHost {
  requestedAt = 0;
  readonly polls: number[] = [];
  readonly connects: { at: number; ok: boolean }[] = [];

  constructor(
    private readonly rebuildMs: number,
    private readonly bootMs: number,
  ) {}

  get rebuiltAt(): number {
    return this.requestedAt + this.rebuildMs;
  }

  activities(): Partial<Activities> {
    return {
      ...hostSteps(),
      requestReinstall: async ({ os }) => {
        this.requestedAt = workflowNow();
        return { taskId: "task-1", os: os || "debian-12" };
      },
      reinstallTaskState: async () => {
        const at = workflowNow();
        this.polls.push(at);
        return at >= this.rebuiltAt ? { state: "succeeded", detail: "rebuilt" } : { state: "running", detail: "installing" };
      },
      connect: async () => {
        const at = workflowNow();
        const ok = at >= this.rebuiltAt + this.bootMs;
        this.connects.push({ at, ok });
        if (!ok) throw sshFailure(SshErrorType.Unreachable, "SSH connection failed (ECONNREFUSED)");
        return { changed: false, detail: "host key SHA256:new" };
      },
    } as Partial<Activities>;
  }
}

/**
 * ReinstallServer (workflows/reinstall.ts) on the time-skipping server: its waits for the
 * provider's rebuild and for the host to answer SSH again are durable timers and retries, so
 * the hours they take in production pass here in seconds. Provider and SSH steps are stand-ins;
 * the server, operation and host key rows are real (PGlite).
 */
describe("reinstall's durable waits (time-skipping)", () => {
  let bed: WorkflowTestbed;
  before(async () => {
    bed = await startWorkflowTestbed();
  });
  after(async () => {
    await bed?.close();
  });

  async function reinstall(host: RebuildingHost, pollIntervalSeconds: number) {
    const fleet = await seedFleet(bed.database.db, 1);
    const serverId = fleet.servers[0]!.id;
    await bed.database.db.update(servers).set({ hostKeyFingerprint: "SHA256:old" }).where(eq(servers.id, serverId));
    return bed.withWorker(host.activities(), async () => {
      const started = Date.now();
      const { operation, handle } = await startServerOperation(
        bed.database.db,
        { client: bed.env.client, taskQueue: bed.taskQueue },
        fleet.owner,
        serverId,
        "reinstall",
        { pollIntervalSeconds },
      );
      const outcome = await handle.result().then(
        (result) => ({ result, error: undefined }),
        (error: unknown) => ({ result: undefined, error }),
      );
      return {
        ...outcome,
        realMs: Date.now() - started,
        server: await serverRow(bed.database.db, serverId),
        operation: await operationRow(bed.database.db, operation.id),
      };
    });
  }

  test("a 90-minute rebuild is polled every interval, the host is waited for while it boots, then bootstrapped", {
    timeout: 120_000,
  }, async () => {
    const host = new RebuildingHost(90 * MINUTE, 10 * MINUTE);
    const ended = await reinstall(host, 300);
    assert.equal(ended.error, undefined, String(ended.error));
    assert.deepEqual(ended.result, { os: "debian-12" });

    // Polled on a durable timer: one poll per interval, not more, until the task succeeded.
    const gaps = host.polls.slice(1).map((at, i) => at - host.polls[i]!);
    assert.ok(
      gaps.every((gap) => gap >= 300_000),
      `polls 5 minutes apart (${gaps.map((g) => g / 1000).join(", ")} s)`,
    );
    assert.ok(host.polls.length >= 18 && host.polls.length <= 20, `${host.polls.length} polls over 90 minutes`);
    assert.ok(host.polls.at(-1)! >= host.rebuiltAt);

    // SSH is tried again while the host boots, and the first success comes once it is up.
    const waits = host.connects.filter((c) => c.at < host.rebuiltAt + 10 * MINUTE);
    assert.ok(waits.length >= 5, `the booting host was tried ${waits.length} times`);
    assert.ok(
      waits.every((c) => !c.ok),
      "no connection before it booted",
    );
    assert.equal(host.connects.filter((c) => c.ok).length, 2, "wait_ssh once, then the bootstrap's connect step");

    assert.equal(ended.server.status, "CONFIGURED");
    assert.equal(ended.server.hostKeyFingerprint, null, "the old host key pin is forgotten");
    assert.equal(ended.operation.status, "SUCCEEDED");
    const steps = (ended.operation.result as { steps: { name: string; status: string }[] }).steps;
    assert.deepEqual(
      steps.map((s) => s.name),
      ["request_rebuild", "wait_rebuild", "reset_host_key", "wait_ssh", "bootstrap"],
    );
    assert.ok(ended.realMs < 100 * MINUTE, "time was skipped");
  });

  test("a rebuild that never finishes fails the reinstall after 2 hours: server ERROR, operation FAILED", {
    timeout: 120_000,
  }, async () => {
    const host = new RebuildingHost(Number.POSITIVE_INFINITY, 0);
    const ended = await reinstall(host, 600);
    assert.ok(ended.error instanceof WorkflowFailedError);
    const span = host.polls.at(-1)! - host.requestedAt;
    assert.ok(span >= 120 * MINUTE && span <= 132 * MINUTE, `polled for ${span / MINUTE} minutes`);
    assert.ok(host.polls.length >= 12 && host.polls.length <= 14, `${host.polls.length} polls 10 minutes apart`);
    assert.equal(host.connects.length, 0, "no SSH attempt on a server that was not rebuilt");
    assert.equal(ended.server.status, "ERROR");
    assert.equal(ended.server.statusReason, "reinstall failed: the provider's rebuild did not finish in 2 hours");
    assert.equal(ended.operation.status, "FAILED");
    assert.equal(ended.operation.error, "the provider's rebuild did not finish in 2 hours");
  });

  test("a rebuilt host that never answers SSH: the reinstall gives up after its retries and marks the server UNREACHABLE", {
    timeout: 120_000,
  }, async () => {
    const host = new RebuildingHost(15 * MINUTE, Number.POSITIVE_INFINITY);
    const ended = await reinstall(host, 60);
    assert.ok(ended.error instanceof WorkflowFailedError);
    assert.equal(host.connects.length, 60, "every attempt of wait_ssh");
    const waited = host.connects.at(-1)!.at - host.connects[0]!.at;
    assert.ok(waited >= 25 * MINUTE, `SSH waited for ${waited / MINUTE} minutes`);
    assert.equal(ended.server.status, "UNREACHABLE");
    assert.equal(ended.server.statusReason, "SSH failed after retries: SSH connection failed (ECONNREFUSED)");
    assert.equal(ended.operation.status, "FAILED");
  });
});
