import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { AuditActorKind } from "../gen/axion/infrastructure/v1/audit_service_pb.js";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ConnectionOutcome, ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { expectCode } from "./support/assertions.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, DOCKER_PREINSTALLED, downHosts, type Fleet, hostExec, regenHostKey, upHosts } from "./support/testhosts.js";

const prefix = "hkchange";

/** The host's current key fingerprints, as `ssh-keygen -lf` prints them. */
const hostFingerprints = (name: string): string[] =>
  hostExec(name, "for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf \"$f\" | cut -d' ' -f2; done").trim().split("\n");

describe("a changed host key", { timeout: 15 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let fleet: Fleet;
  let alice: ReturnType<ProvisioningHarness["api"]["clients"]>;

  before(async () => {
    buildImage();
    downHosts(prefix);
    fleet = upHosts(prefix, 1, "fresh", DOCKER_PREINSTALLED);
    harness = await startProvisioningHarness({ sshConnectTimeoutMs: 4000 });
    alice = harness.api.clients((await harness.api.newOwner()).token);
  });

  after(async () => {
    await harness?.close();
    downHosts(prefix);
  });

  test("is named in every mismatch answer, and the owner can accept exactly that key, never implicitly", async () => {
    const host = fleet.hosts[0]!;
    const clusterId = (await alice.clusters.createCluster({ name: "fleet" })).cluster!.id;
    const credential = { method: { case: "privateKey" as const, value: { key: fleet.privateKey } } };
    const server = (await alice.servers.createServer({ clusterId, name: "rebuilt", host: host.ip, credential })).server!;
    const first = await alice.servers.testServerConnection({ id: server.id });
    assert.equal(first.outcome, ConnectionOutcome.OK, first.message);
    const oldKey = first.hostKeyFingerprint;

    regenHostKey(host.name);
    const newKeys = hostFingerprints(host.name);
    assert.ok(!newKeys.includes(oldKey));

    // The mismatch answer, the server's status reason and the operation's failure all name the new key.
    const mismatch = await alice.servers.testServerConnection({ id: server.id });
    assert.equal(mismatch.outcome, ConnectionOutcome.HOSTKEY_MISMATCH);
    const newKey = mismatch.hostKeyFingerprint;
    assert.ok(newKeys.includes(newKey), `the answer names one of the host's new keys (${newKey})`);
    assert.ok(mismatch.message.includes(newKey), mismatch.message);
    const failed = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.equal(failed.status, OperationStatus.FAILED);
    assert.ok(failed.error.includes(newKey), failed.error);
    const mismatched = (await alice.servers.getServer({ id: server.id })).server!;
    assert.equal(mismatched.status, ServerStatus.HOSTKEY_MISMATCH);
    assert.ok(mismatched.statusReason.includes(newKey), mismatched.statusReason);
    assert.equal(mismatched.hostKeyFingerprint, oldKey, "nothing re-pinned implicitly");

    // Only the key the host presents is accepted.
    await expectCode(
      alice.servers.acceptHostKey({ id: server.id, expectedFingerprint: "SHA256:not-a-fingerprint" }),
      Code.InvalidArgument,
      /expected_fingerprint/,
    );
    const wrong = `SHA256:${"A".repeat(43)}`;
    const refused = await expectCode(alice.servers.acceptHostKey({ id: server.id, expectedFingerprint: wrong }), Code.FailedPrecondition);
    assert.ok(refused.rawMessage.includes(newKey), refused.rawMessage);
    const other = harness.api.clients((await harness.api.newOwner()).token);
    await expectCode(other.servers.acceptHostKey({ id: server.id, expectedFingerprint: newKey }), Code.NotFound);
    assert.equal((await alice.servers.getServer({ id: server.id })).server!.hostKeyFingerprint, oldKey);
    assert.equal((await alice.servers.testServerConnection({ id: server.id })).outcome, ConnectionOutcome.HOSTKEY_MISMATCH);

    const accepted = (await alice.servers.acceptHostKey({ id: server.id, expectedFingerprint: newKey })).server!;
    assert.equal(accepted.hostKeyFingerprint, newKey);
    assert.equal(accepted.status, ServerStatus.PENDING);
    assert.ok(accepted.statusReason.includes(newKey), accepted.statusReason);

    // The server can be operated again; while it is, the key cannot be changed.
    const started = await alice.servers.configureServer({ id: server.id });
    await expectCode(alice.servers.acceptHostKey({ id: server.id, expectedFingerprint: newKey }), Code.FailedPrecondition, /operation/);
    const configured = await watchUntilEnd(alice.operations, started.operation!.id);
    assert.equal(configured.status, OperationStatus.SUCCEEDED, configured.error);
    assert.equal((await alice.servers.getServer({ id: server.id })).server!.status, ServerStatus.CONFIGURED);

    // Every SSH login the worker made is on record: the server and operation, the step, the outcome.
    const logins = (await alice.audit.listAuditEvents({ action: "ssh.login", target: server.id, pageSize: 500 })).events;
    assert.ok(logins.length >= 4, `${logins.length} logins recorded`);
    assert.ok(logins.every((e) => e.actor!.kind === AuditActorKind.SYSTEM && e.actor!.systemName === "worker"));
    assert.ok(logins.every((e) => e.targetIds[0] === server.id && e.targetIds.length === 2));
    const mismatches = logins.filter((e) => e.outcome === "failed_precondition");
    assert.ok(mismatches.length >= 2, "the refused logins after the key changed");
    assert.ok(
      mismatches.every((e) => e.detail.endsWith(": HostKeyMismatch")),
      mismatches.map((e) => e.detail).join(", "),
    );
    assert.equal(logins.at(-1)!.outcome, "ok");
    assert.ok(logins.at(-1)!.targetIds.includes(configured.id), "the configure operation's own login");
    assert.equal((await alice.audit.verifyAuditTrail({})).intact, true);
  });
});
