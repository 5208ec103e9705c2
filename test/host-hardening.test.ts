import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ConnectionOutcome } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, DOCKER_PREINSTALLED, downHosts, type Fleet, hostExec, upFleets } from "./support/testhosts.js";

const prefixes = { forwarded: "hhfwd", sudo: "hhsudo" };

/** How strict a value of the settings hardening writes is (sshd -T spelling). */
const strictness: Record<string, Record<string, number>> = {
  permitrootlogin: { yes: 0, "without-password": 1, "prohibit-password": 1, "forced-commands-only": 2, no: 3 },
  passwordauthentication: { yes: 0, no: 1 },
  kbdinteractiveauthentication: { yes: 0, no: 1 },
  permitemptypasswords: { yes: 0, no: 1 },
  x11forwarding: { yes: 0, no: 1 },
};

const sshdSettings = (name: string): Map<string, string> =>
  new Map(
    hostExec(name, "sshd -T")
      .trim()
      .split("\n")
      .map((line) => {
        const [key = "", ...rest] = line.split(" ");
        return [key, rest.join(" ")] as [string, string];
      }),
  );

/** Every hardened setting is at least as strict as before, and no other setting changed. */
function assertOnlyTightened(before: Map<string, string>, after: Map<string, string>): void {
  for (const [key, ranks] of Object.entries(strictness)) {
    const was = before.get(key) ?? "";
    const now = after.get(key) ?? "";
    assert.ok((ranks[now] ?? -1) >= (ranks[was] ?? 99), `${key} went from ${was} to ${now}: hardening must never loosen a setting`);
  }
  for (const [key, value] of before) {
    if (!(key in strictness)) assert.equal(after.get(key), value, `${key} is not hardening's to change`);
  }
}

describe("firewall and SSH hardening on real hosts", { timeout: 20 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let forwarded: Fleet;
  let sudo: Fleet;
  let alice: ReturnType<ProvisioningHarness["api"]["clients"]>;
  let clusterId: string;

  before(async () => {
    buildImage();
    for (const p of Object.values(prefixes)) downHosts(p);
    ({ forwarded, sudo } = await upFleets({
      forwarded: { prefix: prefixes.forwarded, count: 1, extra: DOCKER_PREINSTALLED },
      sudo: { prefix: prefixes.sudo, count: 1, state: "sudo-user", extra: DOCKER_PREINSTALLED },
    }));
    harness = await startProvisioningHarness({ sshConnectTimeoutMs: 4000 });
    alice = harness.api.clients((await harness.api.newOwner()).token);
    clusterId = (await alice.clusters.createCluster({ name: "fleet" })).cluster!.id;
  });

  after(async () => {
    await harness?.close();
    for (const p of Object.values(prefixes)) downHosts(p);
  });

  test("behind a port forward, the firewall keeps sshd's own port open and the host stays reachable; nftables restarts keep Docker's tables", async () => {
    const host = forwarded.hosts[0]!;
    // A port forward in front of sshd: we connect to 2022, sshd listens on 22 (as behind NAT).
    hostExec(
      host.name,
      "nft add table ip test_forward && nft add chain ip test_forward pre '{ type nat hook prerouting priority -100; }' && nft add rule ip test_forward pre tcp dport 2022 redirect to :22",
    );
    const before = sshdSettings(host.name);
    const key = { method: { case: "privateKey" as const, value: { key: forwarded.privateKey } } };
    const server = (await alice.servers.createServer({ clusterId, name: "forwarded", host: host.ip, sshPort: 2022, credential: key }))
      .server!;

    const op = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
    assert.match(hostExec(host.name, "nft list table inet axion_filter"), /tcp dport \{ 22, 2022 \} accept/);
    assertOnlyTightened(before, sshdSettings(host.name));
    assert.equal((await alice.servers.testServerConnection({ id: server.id })).outcome, ConnectionOutcome.OK);

    const tables = () => hostExec(host.name, "nft list tables").trim().split("\n").sort();
    const docker = tables().filter((t) => /^table ip6? (nat|filter)$/.test(t));
    assert.ok(docker.includes("table ip nat") && docker.includes("table ip filter"), `Docker's tables are there: ${tables()}`);
    const rules = hostExec(host.name, "nft list table inet axion_filter");
    for (let i = 0; i < 2; i++) {
      hostExec(host.name, "systemctl restart nftables");
      const now = tables();
      for (const t of [...docker, "table ip test_forward"]) assert.ok(now.includes(t), `${t} survives a restart of nftables`);
      assert.equal(hostExec(host.name, "nft list table inet axion_filter"), rules, "our table is back once, unchanged");
    }
    assert.equal((await alice.servers.testServerConnection({ id: server.id })).outcome, ConnectionOutcome.OK);

    const rerun = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.equal(rerun.status, OperationStatus.SUCCEEDED, rerun.error);
    for (const step of rerun.steps.filter((s) => s.name === "firewall" || s.name === "ssh_hardening"))
      assert.equal(step.status, "unchanged", `${step.name}: ${step.detail}`);
  });

  test("a sudo-user host that forbids root logins keeps forbidding them after hardening", async () => {
    const host = sudo.hosts[0]!;
    const before = sshdSettings(host.name);
    assert.equal(before.get("permitrootlogin"), "no");
    const key = { method: { case: "privateKey" as const, value: { key: sudo.privateKey } } };
    const server = (await alice.servers.createServer({ clusterId, name: "sudo", host: host.ip, sshUser: host.user, credential: key }))
      .server!;

    const op = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
    const after = sshdSettings(host.name);
    assertOnlyTightened(before, after);
    assert.equal(after.get("permitrootlogin"), "no");
    assert.equal(after.get("passwordauthentication"), "no");
    const hardening = op.steps.find((s) => s.name === "ssh_hardening");
    assert.match(hardening?.detail ?? "", /root login off/);
    assert.doesNotMatch(hardening?.detail ?? "", /root by key/);
  });
});
