import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, test } from "node:test";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { testCredentialsKey } from "./support/api.js";
import { holdDpkgConfigure } from "./support/host-gate.js";
import { ed25519KeyPair } from "./support/keys.js";
import { watchUntilEnd } from "./support/operations.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, downHosts, type Fleet, hostExec, upHosts } from "./support/testhosts.js";

/** The worker as operators run it (`main.ts worker`), in its own process, so it can be killed for real. */
const prefix = "pcrash";
const orchestratorKey = ed25519KeyPair().publicKey.trim();
let pg: TestPostgres;
let harness: ProvisioningHarness;
let fleet: Fleet;

function startWorkerProcess(): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", "app/main.ts", "worker"], {
    env: {
      ...process.env,
      DATABASE_URL: pg.url,
      TEMPORAL_ADDRESS: harness.dev.address,
      TEMPORAL_NAMESPACE: harness.dev.spec.namespace,
      TEMPORAL_TASK_QUEUE: harness.taskQueue,
      CREDENTIALS_KEY: testCredentialsKey,
      ORCHESTRATOR_SSH_PUBLIC_KEY: orchestratorKey,
      SSH_CONNECT_TIMEOUT_MS: "4000",
      LOG_LEVEL: "warn",
    },
    stdio: "ignore",
  });
}

before(async () => {
  buildImage();
  downHosts(prefix);
  fleet = upHosts(prefix, 1, "fresh");
  pg = await startPostgres();
  harness = await startProvisioningHarness({ databaseUrl: pg.url, noWorker: true });
});

after(async () => {
  await harness?.close();
  await pg?.stop();
  downHosts(prefix);
});

test("a worker killed with SIGKILL in the middle of a bootstrap: a new worker finishes it, no step's effect doubled", async () => {
  const alice = harness.api.clients((await harness.api.newOwner()).token);
  const clusterId = (await alice.clusters.createCluster({ name: "crash" })).cluster!.id;
  const host = fleet.hosts[0]!;
  const server = (
    await alice.servers.createServer({
      clusterId,
      name: "crash-1",
      host: host.ip,
      credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
    })
  ).server!;

  // dpkg is held on the host while it installs docker.io: the worker dies in the middle of the step.
  const gate = await holdDpkgConfigure(fleet, host);
  const first = startWorkerProcess();
  const started = await alice.servers.configureServer({ id: server.id });
  try {
    await gate.reached;
    const killed = new Promise((r) => first.once("exit", r));
    first.kill("SIGKILL");
    await killed;
  } finally {
    await gate.release();
  }

  const second = startWorkerProcess();
  try {
    const op = await watchUntilEnd(alice.operations, started.operation!.id);
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
    assert.equal(op.steps.filter((s) => s.name === "docker").length, 1, "the step is reported once");
  } finally {
    const exited = new Promise((r) => second.once("exit", r));
    second.kill("SIGTERM");
    await exited;
  }
  assert.equal(hostExec(host.name, "grep -c '^axion:' /etc/passwd").trim(), "1");
  assert.equal(hostExec(host.name, "cat /etc/sudoers.d/90-axion-axion | wc -l").trim(), "1");
  assert.equal(hostExec(host.name, `grep -cxF '${orchestratorKey}' /home/axion/.ssh/authorized_keys`).trim(), "1");
  assert.equal(hostExec(host.name, "nft list tables | grep -c axion_filter").trim(), "1");
  assert.match(hostExec(host.name, "systemctl is-active docker"), /active/);
  const history = await harness.client.workflow.getHandle(started.operation!.workflowId).fetchHistory();
  const retried = history.events?.some((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
  assert.ok(retried, "the docker activity was retried after its worker died (heartbeat timeout)");
});
