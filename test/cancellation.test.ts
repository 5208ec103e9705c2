import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { holdDpkgConfigure } from "./support/host-gate.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, downHosts, type Fleet, hostExec, upHosts } from "./support/testhosts.js";

const prefix = "pcancel";
/** apt and dpkg, and what they run (maintainer scripts), as `ps` names them. */
const PACKAGE_PROCESSES = "pgrep -a -x 'apt-get|dpkg|dpkg-deb|http' || true";

describe("cancellation and slow steps on real hosts", { timeout: 20 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let fleet: Fleet;
  let alice: ReturnType<ProvisioningHarness["api"]["clients"]>;
  let clusterId: string;
  let n = 0;
  const register = async (host: string) =>
    (
      await alice.servers.createServer({
        clusterId,
        name: `cancel-${++n}`,
        host,
        credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
      })
    ).server!;

  before(async () => {
    buildImage();
    downHosts(prefix);
    fleet = upHosts(prefix, 2, "fresh");
    harness = await startProvisioningHarness({ sshConnectTimeoutMs: 4000 });
    alice = harness.api.clients((await harness.api.newOwner()).token);
    clusterId = (await alice.clusters.createCluster({ name: "cancel" })).cluster!.id;
  });
  after(async () => {
    await harness?.close();
    downHosts(prefix);
  });

  test("CancelOperation during the Docker step kills apt/dpkg on the host, records CANCELLED only after, and the server can be configured again", async () => {
    const host = fleet.hosts[0]!;
    const server = await register(host.ip);
    // dpkg is held on the host as it starts configuring docker.io: apt and dpkg run when the cancel comes.
    const gate = await holdDpkgConfigure(fleet, host);
    const started = await alice.servers.configureServer({ id: server.id });
    let leftOnHost: string;
    let op: Awaited<ReturnType<typeof watchUntilEnd>>;
    try {
      await gate.reached;
      assert.match(hostExec(host.name, PACKAGE_PROCESSES), /dpkg/, "apt is installing docker.io when the cancel comes");
      await alice.operations.cancelOperation({ id: started.operation!.id });
      op = await watchUntilEnd(alice.operations, started.operation!.id);
      // Once the operation is recorded as ended, nothing of the step may still run on the host.
      leftOnHost = hostExec(host.name, PACKAGE_PROCESSES).trim();
    } finally {
      await gate.release();
    }
    assert.equal(leftOnHost, "", "no apt or dpkg process left when the operation says CANCELLED");
    assert.equal(op.status, OperationStatus.CANCELLED);
    assert.match(op.error, /docker/);

    const after = (await alice.servers.getServer({ id: server.id })).server!;
    assert.notEqual(after.status, ServerStatus.PROVISIONING);
    assert.equal(after.status, ServerStatus.ERROR);
    assert.match(after.statusReason, /bootstrap cancelled during step docker/);

    // The interrupted dpkg run is finished by the next attempt: the server configures.
    const again = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.equal(again.status, OperationStatus.SUCCEEDED, again.error);
    assert.match(hostExec(host.name, "systemctl is-active docker"), /active/);
    assert.equal((await alice.servers.getServer({ id: server.id })).server?.status, ServerStatus.CONFIGURED);
  });

  test("a step that runs longer than the heartbeat timeout (30 s) is not retried while it runs", async () => {
    const host = fleet.hosts[1]!;
    const server = await register(host.ip);
    // The first `df` of the diagnosis takes 40 s; every call is logged with its start and end.
    hostExec(
      host.name,
      `mv /usr/bin/df /usr/bin/df.real && touch /tmp/slow-df && cat > /usr/bin/df <<'EOF'
#!/bin/sh
echo "start $$" >> /tmp/df-calls
if [ -e /tmp/slow-df ]; then rm -f /tmp/slow-df; sleep 40; fi
/usr/bin/df.real "$@"; rc=$?
echo "end $$" >> /tmp/df-calls
exit $rc
EOF
chmod 755 /usr/bin/df`,
    );
    try {
      const op = await watchUntilEnd(alice.operations, (await alice.servers.recoverServer({ id: server.id })).operation!.id);
      assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
      const history = await harness.client.workflow.getHandle(op.workflowId).fetchHistory();
      const events = history.events ?? [];
      assert.ok(!events.some((e) => e.activityTaskTimedOutEventAttributes), "no activity timed out");
      assert.deepEqual(
        events.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes?.attempt),
        [1, 1],
        "diagnose and verify ran once each",
      );
      // No two diagnoses overlapped on the host: each call ended before the next began.
      const calls = hostExec(host.name, "cat /tmp/df-calls").trim().split("\n");
      let open = 0;
      for (const line of calls) {
        open += line.startsWith("start") ? 1 : -1;
        assert.ok(open <= 1, `overlapping df calls: ${calls.join(", ")}`);
      }
    } finally {
      hostExec(host.name, "mv /usr/bin/df.real /usr/bin/df");
    }
  });
});
