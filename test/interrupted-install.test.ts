import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, downHosts, type Fleet, hostExec, upHosts } from "./support/testhosts.js";

const prefix = "pinterrupt";

describe("an install another attempt left half done", { timeout: 15 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let fleet: Fleet;

  before(async () => {
    buildImage();
    downHosts(prefix);
    fleet = upHosts(prefix, 1, "fresh");
    harness = await startProvisioningHarness({ sshConnectTimeoutMs: 4000 });
  });
  after(async () => {
    await harness?.close();
    downHosts(prefix);
  });

  // A worker killed during the Docker step leaves its apt running or dpkg interrupted: the binary is
  // there, the package is not configured, the service does not exist. The retry must finish the install.
  test("docker.io unpacked but not configured (a killed attempt) is installed by the next bootstrap", async () => {
    const host = fleet.hosts[0]!;
    hostExec(host.name, "dpkg --unpack /var/cache/apt/archives/docker.io_*.deb >/dev/null 2>&1");
    assert.equal(hostExec(host.name, "dpkg -s docker.io | sed -n 's/^Status: //p'").trim(), "install ok unpacked");
    assert.ok(hostExec(host.name, "command -v docker").trim(), "the docker binary is unpacked");

    const alice = harness.api.clients((await harness.api.newOwner()).token);
    const clusterId = (await alice.clusters.createCluster({ name: "interrupted" })).cluster!.id;
    const server = (
      await alice.servers.createServer({
        clusterId,
        name: "half-installed",
        host: host.ip,
        credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
      })
    ).server!;
    const started = await alice.servers.configureServer({ id: server.id });
    const op = await watchUntilEnd(alice.operations, started.operation!.id);
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
    assert.equal(hostExec(host.name, "dpkg -s docker.io | sed -n 's/^Status: //p'").trim(), "install ok installed");
    assert.equal(hostExec(host.name, "systemctl is-active docker").trim(), "active");
  });
});
