/**
 * Records the committed workflow histories that test/replay.test.ts replays against the
 * current code (`npm run histories:record`). Every workflow kind runs for real: test hosts
 * (network namespaces with systemd and sshd, needs root), a Temporal dev server, the worker,
 * the API with the real agent, and the Time4VPS stand-in for the reinstall. Each history is
 * written to test/histories/<name>.json in the JSON form of `temporal workflow show -o json`.
 * Takes a few minutes; on a shared machine run it under the heavy-test lock:
 *   flock /tmp/axion-heavy.lock npm run histories:record
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import proto from "@temporalio/proto";
import { sql } from "drizzle-orm";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { ProviderKind } from "../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import { RolloutStatus } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ensureHeartbeatMonitor, HEARTBEAT_MONITOR_ID } from "../temporal/heartbeat-monitor.js";
import { ed25519KeyPair } from "../test/support/keys.js";
import { watchUntilEnd } from "../test/support/operations.js";
import { startProvisioningHarness } from "../test/support/provisioning-harness.js";
import { buildImage, downHosts, upHosts } from "../test/support/testhosts.js";
import { startTime4vpsStandIn } from "../test/support/time4vps-standin.js";
import { fleetWorkflows, systemWorkflows } from "../workflows/contract.js";

const { History } = proto.temporal.api.history.v1;
const prefix = "prec";
const outDir = join(process.cwd(), "test", "histories");

execFileSync("bash", ["scripts/build-agent.sh"], { stdio: ["ignore", "ignore", "inherit"], timeout: 10 * 60_000 });
buildImage();
downHosts(prefix);
const fleet = upHosts(prefix, 2, "fresh");
const [a, b] = fleet.hosts;
assert.ok(a && b, "two test hosts");
const standIn = await startTime4vpsStandIn({
  username: "axion-rec",
  password: "t4v-record-password",
  servers: [{ id: 201, oses: ["debian-12"], os: "debian-12", ip: b.ip }],
  taskPhase: { ms: 1000 },
});
const harness = await startProvisioningHarness({
  orchestratorPublicKey: ed25519KeyPair().publicKey.trim(),
  sshConnectTimeoutMs: 4000,
  agent: { binaryDir: join(process.cwd(), "agent", "dist"), gateway: fleet.gateway, heartbeatIntervalSeconds: 1 },
  providers: { time4vps: { baseUrl: standIn.baseUrl, timeoutMs: 5000 } },
});
mkdirSync(outDir, { recursive: true });
const recorded: string[] = [];

/**
 * The history as JSON (`History.toObject`: enums by name, 64-bit numbers and bytes as strings).
 * Not the CLI's proto3 JSON: `historyFromJSON` breaks on the two protobufjs copies in node_modules.
 */
async function save(name: string, workflowId: string, runId?: string): Promise<void> {
  const history = History.fromObject(await harness.client.workflow.getHandle(workflowId, runId).fetchHistory());
  const json = JSON.stringify(History.toObject(history, { longs: String, enums: String, bytes: String }), null, 1);
  writeFileSync(join(outDir, `${name}.json`), `${json}\n`);
  recorded.push(name);
  console.log(`recorded ${name} (${history.events.length} events)`);
}

try {
  const { token, ownerId } = await harness.api.newOwner("history-recorder");
  const owner = harness.api.clients(token);
  const defined = <T>(value: T | undefined, what: string): T => {
    assert.ok(value, `no ${what} in the answer`);
    return value;
  };
  const clusterId = defined((await owner.clusters.createCluster({ name: "histories" })).cluster, "cluster").id;
  const credential = { method: { case: "privateKey" as const, value: { key: fleet.privateKey } } };
  const server = defined((await owner.servers.createServer({ clusterId, name: "rec-a", host: a.ip, credential })).server, "server");
  await owner.providerAccounts.createProviderAccount({
    name: "rec-time4vps",
    kind: ProviderKind.TIME4VPS,
    credentials: { username: "axion-rec", password: "t4v-record-password" },
  });
  const rebuilt = defined(
    (await owner.servers.createServer({ clusterId, name: "rec-b", host: b.ip, credential, provider: "time4vps", providerServerId: "201" }))
      .server,
    "server",
  );
  const finished = async (operation: { id: string; workflowId: string } | undefined, name: string) => {
    assert.ok(operation, `${name}: no operation`);
    const done = await watchUntilEnd(owner.operations, operation.id);
    assert.equal(done.status, OperationStatus.SUCCEEDED, `${name}: ${done.error}`);
    await save(name, operation.workflowId);
  };

  const tested = await owner.servers.testServerConnection({ id: server.id });
  await save("test-connection", defined(tested.operation, "operation").workflowId);
  await finished((await owner.servers.configureServer({ id: server.id })).operation, "bootstrap");
  await finished((await owner.servers.setupDeployKey({ id: server.id })).operation, "deploy-key");
  await finished((await owner.agents.installAgent({ id: server.id })).operation, "install-agent");
  await finished((await owner.servers.recoverServer({ id: server.id })).operation, "recovery");
  const plan = await harness.client.workflow.start(fleetWorkflows.plan, {
    workflowId: "plan/recording",
    taskQueue: harness.taskQueue,
    args: [{ kind: "configure", serverIds: [server.id] }],
  });
  assert.equal((await plan.result()).servers[0]?.outcome, "unchanged", "a configured server's plan");
  await save("plan", plan.workflowId);
  await finished((await owner.servers.reinstallServer({ id: rebuilt.id, os: "debian-12" })).operation, "reinstall");
  // The reinstall's bootstrap runs as its child, under an id of its own.
  const reinstalled = await harness.client.workflow.getHandle(`reinstall/${rebuilt.id}`).fetchHistory();
  const child = reinstalled.events?.find((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)
    ?.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
  await save("reinstall-bootstrap", defined(child ?? undefined, "child bootstrap of the reinstall"));

  // A rollout over both servers: the canary's run pauses after its batch and is resumed (an update), then continues as new.
  const rollout = defined(
    (
      await owner.rollouts.startRollout({
        kind: RolloutKind.TEST_CONNECTION,
        target: { clusterId },
        strategy: { canarySize: 1, pauseAfterCanary: true },
      })
    ).rollout,
    "rollout",
  );
  for (let i = 0; (await owner.rollouts.getRollout({ id: rollout.id })).rollout?.status !== RolloutStatus.PAUSED; i++) {
    assert.ok(i < 600, "the rollout pauses after its canary");
    await new Promise((r) => setTimeout(r, 100));
  }
  await owner.rollouts.resumeRollout({ id: rollout.id });
  let rolledOut = rollout;
  for await (const update of owner.rollouts.watchRollout({ id: rollout.id })) rolledOut = update.rollout ?? rolledOut;
  assert.equal(rolledOut.status, RolloutStatus.SUCCEEDED, rolledOut.reason);
  const rolloutRuns: { runId: string; started: number }[] = [];
  for await (const run of harness.client.workflow.list({ query: `WorkflowId = "${rollout.workflowId}"` }))
    rolloutRuns.push({ runId: run.runId, started: run.startTime.getTime() });
  rolloutRuns.sort((x, y) => x.started - y.started);
  await save("rollout-canary", rollout.workflowId, defined(rolloutRuns[0], "first rollout run").runId);
  await save("rollout-last", rollout.workflowId);

  // A rollout whose canary fails with max failures 1: its run ends FAILED (RolloutFailed), after its patch marker.
  // Its servers exist only in the database, at a loopback address the network policy refuses: each test fails at once.
  const refused = (await harness.api.database.db.execute(
    sql`with c as (insert into clusters (id, owner_id, name) values (gen_random_uuid(), ${ownerId}, 'refused') returning id)
      insert into servers (id, owner_id, cluster_id, name, host, ssh_port, auth_method)
      select gen_random_uuid(), ${ownerId}, c.id, 'refused-' || i, '127.0.0.1', 1000 + i, 'private_key'
      from c, generate_series(1, 2) as i returning cluster_id as id`,
  )) as unknown as { id: string }[] | { rows: { id: string }[] };
  const failing = defined(
    (
      await owner.rollouts.startRollout({
        kind: RolloutKind.TEST_CONNECTION,
        target: { clusterId: defined((Array.isArray(refused) ? refused : refused.rows)[0], "refused cluster").id },
        strategy: { canarySize: 1, maxFailures: { value: { case: "count", value: 1 } } },
      })
    ).rollout,
    "failing rollout",
  );
  let failed = failing;
  for await (const update of owner.rollouts.watchRollout({ id: failing.id })) failed = update.rollout ?? failed;
  assert.equal(failed.status, RolloutStatus.FAILED, failed.reason);
  await save("rollout-failed", failing.workflowId);

  // One page per run: the first run continues as new, the last one ends the check.
  const fleetCheck = await harness.client.workflow.start(systemWorkflows.fleetCheck, {
    workflowId: "fleet-check-recording",
    taskQueue: harness.taskQueue,
    args: [{ pageSize: 1 }],
  });
  await fleetCheck.result();
  await save("fleet-check-page", fleetCheck.workflowId, fleetCheck.firstExecutionRunId);
  await save("fleet-check-last", fleetCheck.workflowId);

  // The reconciler finds every operation above ended and leaves them as they are.
  const reconcile = await harness.client.workflow.start(systemWorkflows.reconcileOperations, {
    workflowId: "operations-reconciler-recording",
    taskQueue: harness.taskQueue,
    args: [{}],
  });
  await reconcile.result();
  await save("reconcile-operations", reconcile.workflowId);
  const rollups = await harness.client.workflow.start(systemWorkflows.rollUpMetrics, {
    workflowId: "metric-rollups-recording",
    taskQueue: harness.taskQueue,
    args: [{ settings: { rawRetentionHours: 6, minuteRetentionDays: 7, hourRetentionDays: 365 } }],
  });
  await rollups.result();
  await save("metric-rollups", rollups.workflowId);

  // A few sweeps (with recoveries on), then a worker start hands it settings: the run continues as new.
  const settings = {
    timeoutSeconds: 6,
    intervalSeconds: 1,
    recoverOffline: true,
    maxOfflineRecoveries: 2,
    metricsRetentionHours: 24,
    outboxRetentionHours: 24,
    ingestionProgressRetentionHours: 24,
  };
  await ensureHeartbeatMonitor(harness.client, harness.taskQueue, settings);
  const monitorRun = (await harness.client.workflow.getHandle(HEARTBEAT_MONITOR_ID).describe()).runId;
  await new Promise((r) => setTimeout(r, 5000));
  await ensureHeartbeatMonitor(harness.client, harness.taskQueue, { ...settings, timeoutSeconds: 7 });
  await save("heartbeat-monitor", HEARTBEAT_MONITOR_ID, monitorRun);
  await harness.client.workflow.getHandle(HEARTBEAT_MONITOR_ID).terminate("recording over");

  // Histories of workflows that no longer run anywhere would linger: keep only what was recorded now.
  for (const file of readdirSync(outDir)) if (!recorded.includes(file.replace(/\.json$/, ""))) rmSync(join(outDir, file));
  // In the repository's JSON style, so `biome check` passes on the committed files.
  execFileSync(join(process.cwd(), "node_modules", ".bin", "biome"), ["format", "--write", outDir], { stdio: "ignore" });
  console.log(`${recorded.length} histories in ${outDir}`);
} finally {
  await harness.close();
  await standIn.close();
  downHosts(prefix);
}
