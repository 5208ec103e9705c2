import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import ssh2 from "ssh2";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ProviderKind } from "../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import { ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { ensureFleetCheckSchedule, FLEET_CHECK_SCHEDULE_ID } from "../temporal/schedules.js";
import { holdCommand } from "./support/host-gate.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, DOCKER_PREINSTALLED, downHosts, type Fleet, hostExec, upHosts } from "./support/testhosts.js";
import { startTime4vpsStandIn, type Time4vpsStandIn } from "./support/time4vps-standin.js";
import { activityScheduled } from "./support/workflow-history.js";

const prefix = "pops";

describe("recovery, fleet-check schedule, reinstall and cancel on real hosts", { timeout: 30 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let fleet: Fleet;
  let standIn: Time4vpsStandIn;
  let alice: ReturnType<ProvisioningHarness["api"]["clients"]>;
  let clusterId: string;
  let n = 0;

  const register = async (host: string, extra: Record<string, unknown> = {}) =>
    (
      await alice.servers.createServer({
        clusterId,
        name: `ops-${++n}`,
        host,
        credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
        ...extra,
      })
    ).server!;
  const waitForEnd = (operationId: string) => watchUntilEnd(alice.operations, operationId);
  const configure = async (serverId: string) => {
    const op = await waitForEnd((await alice.servers.configureServer({ id: serverId })).operation!.id);
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
  };

  before(async () => {
    buildImage();
    downHosts(prefix);
    fleet = upHosts(prefix, 4, "fresh", DOCKER_PREINSTALLED);
    standIn = await startTime4vpsStandIn({
      username: "axion-test",
      password: "t4v-secret-password",
      servers: [{ id: 101, oses: ["debian-12", "ubuntu-24.04"], os: "debian-11", ip: fleet.hosts[2]!.ip }],
      taskPhase: "held",
    });
    harness = await startProvisioningHarness({
      sshConnectTimeoutMs: 4000,
      providers: { time4vps: { baseUrl: standIn.baseUrl, timeoutMs: 5000 } },
    });
    alice = harness.api.clients((await harness.api.newOwner()).token);
    clusterId = (await alice.clusters.createCluster({ name: "ops" })).cluster!.id;
  });

  after(async () => {
    await harness?.close();
    await standIn?.close();
    downHosts(prefix);
  });

  test("RecoverServer frees a full Docker disk and reports what it did", async () => {
    const host = fleet.hosts[0]!;
    const server = await register(host.ip);
    await configure(server.id);
    // Docker's data on a small disk, filled by an unused image.
    hostExec(
      host.name,
      "systemctl stop docker docker.socket && mount -t tmpfs -o size=300m tmpfs /var/lib/docker && systemctl start docker && " +
        "head -c 260M /dev/urandom > /tmp/blob && tar -C /tmp -cf - blob | docker import - junk:1 >/dev/null && rm /tmp/blob",
    );
    assert.ok(Number(hostExec(host.name, "df -P /var/lib/docker | awk 'NR==2{print $5}'").replace("%", "")) >= 85);

    const op = await waitForEnd((await alice.servers.recoverServer({ id: server.id })).operation!.id);
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
    assert.deepEqual(
      op.steps.map((s) => s.name),
      ["diagnose", "prune_docker", "vacuum_journal", "verify"],
    );
    assert.match(op.steps[0]!.detail, /\/var\/lib\/docker \d+% used/);
    assert.equal(hostExec(host.name, "docker images -q junk:1").trim(), "", "the unused image was pruned");
    assert.ok(Number(hostExec(host.name, "df -P /var/lib/docker | awk 'NR==2{print $5}'").replace("%", "")) < 85);

    // A healthy server: diagnose and verify only.
    const healthy = await waitForEnd((await alice.servers.recoverServer({ id: server.id })).operation!.id);
    assert.deepEqual(
      healthy.steps.map((s) => s.name),
      ["diagnose", "verify"],
    );
  });

  test("the fleet-check schedule finds a hung Docker and starts a recovery that restarts it", async () => {
    const host = fleet.hosts[1]!;
    const server = await register(host.ip);
    await configure(server.id);
    await ensureFleetCheckSchedule(harness.client, { cron: "0 3 * * *", taskQueue: harness.taskQueue });
    await ensureFleetCheckSchedule(harness.client, { cron: "*/30 * * * *", taskQueue: harness.taskQueue });
    const described = await harness.client.schedule.getHandle(FLEET_CHECK_SCHEDULE_ID).describe();
    assert.equal(described.spec.calendars?.[0]?.minute?.[0]?.step, 30, "an existing schedule is brought to the configured cron");

    hostExec(host.name, "kill -STOP $(pidof dockerd)");
    await harness.client.schedule.getHandle(FLEET_CHECK_SCHEDULE_ID).trigger();
    let recovery: Awaited<ReturnType<typeof alice.operations.listOperations>>["operations"][number] | undefined;
    for (let i = 0; i < 600 && !recovery; i++) {
      const ops = await alice.operations.listOperations({ serverId: server.id });
      recovery = ops.operations.find((o) => o.workflowId === `recovery/${server.id}`);
      if (!recovery) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(recovery, "the fleet check started a recovery");
    const done = await waitForEnd(recovery.id);
    assert.equal(done.status, OperationStatus.SUCCEEDED, done.error);
    assert.ok(done.steps.some((s) => s.name === "restart_docker"));
    assert.match(hostExec(host.name, "timeout 10 docker info --format '{{.ServerVersion}}'"), /^20\./);
  });

  test("ReinstallServer: the provider rebuilds, the new host key is trusted, the fresh OS is bootstrapped", async () => {
    const host = fleet.hosts[2]!;
    const { providerAccount } = await alice.providerAccounts.createProviderAccount({
      name: "t4v",
      kind: ProviderKind.TIME4VPS,
      credentials: { username: "axion-test", password: "t4v-secret-password" },
    });
    const server = await register(host.ip, { providerAccountId: providerAccount!.id, providerServerId: "101" });
    assert.equal(server.provider, "time4vps");
    await configure(server.id);
    const oldPin = (await alice.servers.getServer({ id: server.id })).server!.hostKeyFingerprint;

    const started = await alice.servers.reinstallServer({ id: server.id, os: "debian-12" });
    // The stand-in holds the rebuild task running until the host below has been rebuilt.
    await activityScheduled(harness.client, started.operation!.workflowId, "reinstallTaskState");
    assert.equal((await alice.servers.getServer({ id: server.id })).server?.status, ServerStatus.REINSTALLING);
    // What a rebuild does to the machine: new host keys, none of our configuration.
    hostExec(
      host.name,
      "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh && userdel -r axion && rm -f /etc/sudoers.d/90-axion-axion",
    );
    standIn.releaseTasks();
    const op = await waitForEnd(started.operation!.id);
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
    assert.deepEqual(
      op.steps.map((s) => s.name),
      ["request_rebuild", "wait_rebuild", "reset_host_key", "wait_ssh", "bootstrap"],
    );

    const after = (await alice.servers.getServer({ id: server.id })).server!;
    assert.equal(after.status, ServerStatus.CONFIGURED);
    assert.ok(after.hostKeyFingerprint && after.hostKeyFingerprint !== oldPin, "the new host key is pinned");
    assert.match(hostExec(host.name, "sudo -l -U axion"), /NOPASSWD: ALL/, "the bootstrap ran again on the fresh OS");

    const request = standIn.requests.find((r) => r.method === "POST" && r.path === "server/101/reinstall");
    const body = request?.body as { os: string; ssh_key: string };
    assert.equal(body.os, "debian-12");
    const parsed = ssh2.utils.parseKey(fleet.privateKey);
    const publicKey = (Array.isArray(parsed) ? parsed[0] : parsed) as ssh2.ParsedKey;
    assert.ok(body.ssh_key.includes(publicKey.getPublicSSH().toString("base64")), "the server's own public key goes to the rebuilt OS");

    let histories = "";
    for await (const e of harness.client.workflow.list({ query: `AxionServerId = "${server.id}"` })) {
      histories += JSON.stringify(await harness.client.workflow.getHandle(e.workflowId, e.runId).fetchHistory(), (_k, v) =>
        typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("utf8") : v,
      );
    }
    assert.ok(histories.includes("reinstallWorkflow"), "found through the AxionServerId search attribute");
    for (const secret of ["t4v-secret-password", "Password: Xr", fleet.privateKey.split("\n")[1]!]) {
      assert.ok(!histories.includes(secret), `no ${secret.slice(0, 12)}… in the histories`);
    }
  });

  test("CancelOperation stops a running bootstrap and records it as cancelled", async () => {
    const host = fleet.hosts[3]!;
    const server = await register(host.ip);
    // The admin_user step is held on the host: the bootstrap is surely running when the cancel comes.
    const gate = await holdCommand(fleet, host, "useradd", "/usr/sbin/useradd");
    const started = await alice.servers.configureServer({ id: server.id });
    let cancelled: Awaited<ReturnType<typeof alice.operations.cancelOperation>>;
    try {
      await gate.reached;
      cancelled = await alice.operations.cancelOperation({ id: started.operation!.id });
    } finally {
      await gate.release();
    }
    assert.equal(cancelled.operation?.id, started.operation?.id);
    const op = await waitForEnd(started.operation!.id);
    assert.equal(op.status, OperationStatus.CANCELLED);
    // A new bootstrap may start right away and finishes the job.
    await configure(server.id);
  });
});
