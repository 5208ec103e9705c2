import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sql } from "drizzle-orm";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { PlanOutcome, RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { BusyServerPolicy, type Rollout, RolloutServerState, RolloutStatus } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { holdDpkgConfigure } from "./support/host-gate.js";
import { ed25519KeyPair } from "./support/keys.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, DOCKER_PREINSTALLED, downHosts, type Fleet, hostExec, type TestHost, upFleets } from "./support/testhosts.js";

const prefixes = { fresh: "rofresh", wrongOs: "rowrong", slow: "roslow" };
const S = RolloutServerState;

/** How many times sshd let anyone in on this host. */
const logins = (host: TestHost) =>
  Number(hostExec(host.name, "journalctl --no-pager -o cat -t sshd | grep -c '^Accepted ' || true").trim());

describe("configure rollouts on real hosts", { timeout: 30 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let fresh: Fleet;
  let wrongOs: Fleet;
  let slow: Fleet;
  let alice: ReturnType<ProvisioningHarness["api"]["clients"]>;
  let clusterId: string;
  /** By name: h1..h6 (h3 is the wrong-OS host), slow (no Docker yet). */
  const ids = new Map<string, string>();
  const hosts = new Map<string, TestHost>();

  const register = async (name: string, host: TestHost, key: string) => {
    const server = (
      await alice.servers.createServer({ clusterId, name, host: host.ip, credential: { method: { case: "privateKey", value: { key } } } })
    ).server!;
    ids.set(name, server.id);
    hosts.set(name, host);
  };
  const watchToEnd = async (id: string, seen?: Set<string>) => {
    let last: Rollout | undefined;
    for await (const update of alice.rollouts.watchRollout({ id })) {
      last = update.rollout;
      for (const s of last?.servers ?? []) seen?.add(`${s.serverName}:${S[s.state]}`);
    }
    assert.ok(last);
    return last;
  };
  const stateOf = (rollout: Rollout) => Object.fromEntries(rollout.servers.map((s) => [s.serverName, S[s.state]]));
  const configure = (names: string[], strategy: Record<string, unknown>) => ({
    kind: RolloutKind.CONFIGURE,
    target: { serverIds: names.map((n) => ids.get(n) as string) },
    strategy,
  });

  before(async () => {
    buildImage();
    for (const p of Object.values(prefixes)) downHosts(p);
    // Docker preinstalled where the rollout, not dpkg, is under test; "slow" installs it.
    ({ fresh, wrongOs, slow } = await upFleets({
      fresh: { prefix: prefixes.fresh, count: 5, extra: DOCKER_PREINSTALLED },
      wrongOs: { prefix: prefixes.wrongOs, count: 1, state: "wrong-os", extra: DOCKER_PREINSTALLED },
      slow: { prefix: prefixes.slow, count: 1 },
    }));
    harness = await startProvisioningHarness({ orchestratorPublicKey: ed25519KeyPair().publicKey.trim(), sshConnectTimeoutMs: 4000 });
    alice = harness.api.clients((await harness.api.newOwner()).token);
    clusterId = (await alice.clusters.createCluster({ name: "rollout" })).cluster!.id;
    const [h1, h2, h4, h5, h6] = fresh.hosts as TestHost[];
    for (const [name, host] of [
      ["h1", h1],
      ["h2", h2],
      ["h3", wrongOs.hosts[0]],
      ["h4", h4],
      ["h5", h5],
      ["h6", h6],
    ] as [string, TestHost][])
      await register(name, host, fresh.privateKey);
    await register("slow", slow.hosts[0] as TestHost, slow.privateKey);
  });
  after(async () => {
    await harness?.close();
    for (const p of Object.values(prefixes)) downHosts(p);
  });

  test("canary 1, batch 2, max failures 1 with a wrong-OS host in the second batch: stops after that batch, later hosts untouched", async () => {
    const started = await alice.rollouts.startRollout({
      kind: RolloutKind.CONFIGURE,
      target: { clusterId, serverIds: ["h1", "h2", "h3", "h4", "h5", "h6"].map((n) => ids.get(n) as string) },
      strategy: { canarySize: 1, batchSize: { value: { case: "count", value: 2 } }, maxFailures: { value: { case: "count", value: 1 } } },
    });
    assert.equal(started.rollout?.batchCount, 4);
    const end = await watchToEnd(started.rollout!.id);
    assert.equal(end.status, RolloutStatus.FAILED, end.reason);
    assert.match(end.reason, /1 of 6 servers failed \(max failures 1\): stopped after batch 2 of 4; 3 servers not touched/);
    assert.deepEqual(stateOf(end), {
      h1: "SUCCEEDED",
      h2: "SUCCEEDED",
      h3: "FAILED",
      h4: "NOT_REACHED",
      h5: "NOT_REACHED",
      h6: "NOT_REACHED",
    });
    for (const s of end.servers.slice(3)) assert.equal(s.reason, "not reached: the rollout stopped after batch 2 of 4 — max failures 1");
    assert.match(end.servers[2]!.reason, /unsupported|centos/i);
    for (const name of ["h4", "h5", "h6"]) assert.equal(logins(hosts.get(name)!), 0, `nobody logged in to ${name}`);
    assert.ok(logins(hosts.get("h1")!) > 0);
    for (const name of ["h1", "h2"])
      assert.equal((await alice.servers.getServer({ id: ids.get(name)! })).server?.status, ServerStatus.CONFIGURED, name);
  });

  test("pause after the canary holds the next batch until ResumeRollout; the plan says would change before, unchanged after", async () => {
    const planned = async () =>
      (await alice.rollouts.planRollout({ ...configure(["h4", "h5"], { canarySize: 1 }), checks: true })).batches.flatMap((b) =>
        b.plans.map((p) => PlanOutcome[p.outcome]),
      );
    assert.deepEqual(await planned(), ["WOULD_CHANGE", "WOULD_CHANGE"]);
    assert.equal(logins(hosts.get("h5")!) > 0, true, "the plan logged in (read-only)");
    const loginsBefore = logins(hosts.get("h5")!);
    const { rollout } = await alice.rollouts.startRollout(configure(["h4", "h5"], { canarySize: 1, pauseAfterCanary: true }));
    let paused: Rollout | undefined;
    for (let i = 0; i < 600 && paused?.status !== RolloutStatus.PAUSED; i++) {
      paused = (await alice.rollouts.getRollout({ id: rollout!.id })).rollout;
      if (paused?.status !== RolloutStatus.PAUSED) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(paused?.status, RolloutStatus.PAUSED);
    assert.deepEqual(stateOf(paused!), { h4: "SUCCEEDED", h5: "PENDING" });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(logins(hosts.get("h5")!), loginsBefore, "still untouched while paused");
    await alice.rollouts.resumeRollout({ id: rollout!.id });
    const end = await watchToEnd(rollout!.id);
    assert.equal(end.status, RolloutStatus.SUCCEEDED, end.reason);
    assert.deepEqual(stateOf(end), { h4: "SUCCEEDED", h5: "SUCCEEDED" });
    assert.deepEqual(await planned(), ["UNCHANGED", "UNCHANGED"]);
  });

  test("abort mid-batch cancels the running child through the real cancellation and leaves the server operable", async () => {
    // dpkg is held on the slow host while it installs docker.io: the abort comes mid-step.
    const gate = await holdDpkgConfigure(slow, hosts.get("slow")!);
    const { rollout } = await alice.rollouts.startRollout(configure(["slow", "h6"], { canarySize: 2 }));
    let aborted: Awaited<ReturnType<typeof alice.rollouts.abortRollout>>;
    try {
      await gate.reached;
      aborted = await alice.rollouts.abortRollout({ id: rollout!.id });
    } finally {
      await gate.release();
    }
    assert.equal(aborted.rollout?.status, RolloutStatus.ABORTED);
    const states = stateOf(aborted.rollout!);
    assert.equal(states.slow, "CANCELLED");
    assert.ok(["SUCCEEDED", "CANCELLED"].includes(states.h6 as string), `h6: ${states.h6}`);
    const slowOp = aborted.rollout!.servers.find((s) => s.serverName === "slow")!.operationId;
    const op = (await alice.operations.getOperation({ id: slowOp })).operation!;
    assert.equal(op.status, OperationStatus.CANCELLED);
    assert.match(op.error, /cancelled during step docker/);
    assert.equal(hostExec(hosts.get("slow")!.name, "pgrep -a -x 'apt-get|dpkg' || true").trim(), "", "apt/dpkg stopped");
    const server = (await alice.servers.getServer({ id: ids.get("slow")! })).server!;
    assert.equal(server.status, ServerStatus.ERROR);
    assert.match(server.statusReason, /run it again to finish/);
    const [running] = (
      (await harness.api.database.db.execute(
        sql`select count(*)::int as n from operations where rollout_id = ${rollout!.id} and status = 'RUNNING'`,
      )) as unknown as { rows: { n: number }[] }
    ).rows;
    assert.equal(running?.n, 0);
  });

  test("a server busy with another operation is skipped, or waited for, as the strategy asks", async () => {
    // The aborted server is operable: configuring it again starts (and finishes the interrupted install),
    // held on the host (dpkg configuring) until both rollouts have met it busy.
    const gate = await holdDpkgConfigure(slow, hosts.get("slow")!);
    const direct = await alice.servers.configureServer({ id: ids.get("slow")! });
    await gate.reached;
    const skip = await alice.rollouts.startRollout(configure(["slow", "h1"], { canarySize: 0 }));
    const skipped = await watchToEnd(skip.rollout!.id);
    assert.deepEqual(stateOf(skipped), { slow: "SKIPPED", h1: "SUCCEEDED" });
    assert.match(skipped.servers.find((s) => s.serverName === "slow")!.reason, new RegExp(direct.operation!.id));
    assert.equal(skipped.status, RolloutStatus.SUCCEEDED);

    const wait = await alice.rollouts.startRollout(configure(["slow"], { busyPolicy: BusyServerPolicy.WAIT }));
    let waiting = false;
    try {
      // WAITING lasts while the gate holds the other operation: the stream cannot pass it by.
      for await (const update of alice.rollouts.watchRollout({ id: wait.rollout!.id })) {
        waiting = update.rollout?.servers.some((s) => s.serverName === "slow" && s.state === S.WAITING) ?? false;
        if (waiting) break;
      }
    } finally {
      await gate.release();
    }
    assert.ok(waiting, "the rollout waits for the server's running operation");
    const waited = await watchToEnd(wait.rollout!.id);
    const first = await watchUntilEnd(alice.operations, direct.operation!.id);
    assert.equal(first.status, OperationStatus.SUCCEEDED, first.error);
    assert.equal(waited.status, RolloutStatus.SUCCEEDED, waited.reason);
    assert.notEqual(waited.servers[0]!.operationId, direct.operation!.id, "its own operation, after the other one ended");
  });
});
