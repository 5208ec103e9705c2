import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { eq } from "drizzle-orm";
import { openSsh } from "../activities/ssh/session.js";
import { sh } from "../activities/ssh/shell.js";
import { servers } from "../db/schema.js";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ConnectionOutcome, DeployKeyAction, ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { expectCode } from "./support/assertions.js";
import { ed25519KeyPair } from "./support/keys.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, DOCKER_PREINSTALLED, downHosts, type Fleet, hostExec, regenHostKey, upFleets } from "./support/testhosts.js";

const orchestratorKey = ed25519KeyPair().publicKey.trim();
const prefixes = { fresh: "pfresh", sudo: "psudo", wrongOs: "pwrongos", down: "pdown" };

describe("provisioning over real SSH", { timeout: 30 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let fleet: Fleet;
  let sudoFleet: Fleet;
  let wrongOs: Fleet;
  let down: Fleet;
  let alice: ReturnType<ProvisioningHarness["api"]["clients"]>;
  let clusterId: string;
  let n = 0;

  const keyCredential = () => ({ method: { case: "privateKey" as const, value: { key: fleet.privateKey } } });
  const register = async (host: string, extra: Record<string, unknown> = {}) =>
    (await alice.servers.createServer({ clusterId, name: `srv-${++n}`, host, credential: keyCredential(), ...extra })).server!;
  const waitForEnd = (operationId: string) => watchUntilEnd(alice.operations, operationId);
  /** Servers are unique per owner by host:port; a test that registers a host again acts as a new owner. */
  const switchOwner = async () => {
    alice = harness.api.clients((await harness.api.newOwner()).token);
    clusterId = (await alice.clusters.createCluster({ name: "fleet" })).cluster!.id;
  };
  const statusOf = async (id: string) => (await alice.servers.getServer({ id })).server!;

  before(async () => {
    buildImage();
    for (const p of Object.values(prefixes)) downHosts(p);
    // Docker is installed from scratch on fleet.hosts[1] (the known-good test); elsewhere it is preinstalled.
    ({ fleet, sudoFleet, wrongOs, down } = await upFleets({
      fleet: { prefix: prefixes.fresh, count: 3 },
      sudoFleet: { prefix: prefixes.sudo, count: 1, state: "sudo-user", extra: DOCKER_PREINSTALLED },
      wrongOs: { prefix: prefixes.wrongOs, count: 1, state: "wrong-os" },
      down: { prefix: prefixes.down, count: 1, state: "sshd-down" },
    }));
    // sshd answers a wrong password only after PAM's 2 s failure delay: on a loaded machine the handshake and that
    // delay together once took longer than 4 s, and an auth failure read as a timeout.
    harness = await startProvisioningHarness({ orchestratorPublicKey: orchestratorKey, sshConnectTimeoutMs: 8000 });
    await switchOwner();
  });

  after(async () => {
    await harness?.close();
    for (const p of Object.values(prefixes)) downHosts(p);
  });

  test("TestServerConnection: ok with OS facts, and the host key is pinned on first use", async () => {
    const host = fleet.hosts[0]!;
    const server = await register(host.ip);
    const answer = await alice.servers.testServerConnection({ id: server.id });
    assert.equal(answer.outcome, ConnectionOutcome.OK, answer.message);
    assert.equal(answer.facts?.osId, "debian");
    assert.equal(answer.facts?.osVersion, "12");
    assert.equal(answer.facts?.arch, "x86_64");
    assert.ok(Object.values(host.hostKeys).includes(answer.hostKeyFingerprint), "the fingerprint is one of the host's keys");
    assert.equal((await statusOf(server.id)).hostKeyFingerprint, answer.hostKeyFingerprint);
    assert.equal(answer.operation?.status, OperationStatus.SUCCEEDED);
  });

  test("TestServerConnection classifies auth failure and an unreachable host", async () => {
    await switchOwner();
    const wrongPassword = await register(fleet.hosts[0]!.ip, {
      sshPort: 22,
      sshUser: "nobody",
      credential: { method: { case: "password", value: "wrong" } },
    });
    const auth = await alice.servers.testServerConnection({ id: wrongPassword.id });
    assert.equal(auth.outcome, ConnectionOutcome.AUTH_FAILED, auth.message);

    const refused = await register(down.hosts[0]!.ip);
    const unreachable = await alice.servers.testServerConnection({ id: refused.id });
    assert.equal(unreachable.outcome, ConnectionOutcome.UNREACHABLE, unreachable.message);
    assert.equal((await statusOf(refused.id)).status, ServerStatus.UNREACHABLE);
  });

  test("ConfigureServer brings a fresh host to the known-good state, watchable step by step", async () => {
    const host = fleet.hosts[1]!;
    const server = await register(host.ip);
    const started = await alice.servers.configureServer({ id: server.id });
    assert.equal(started.operation?.workflowId, `bootstrap/${server.id}`);
    const seen: string[] = [];
    let final: Awaited<ReturnType<typeof waitForEnd>> | undefined;
    for await (const update of alice.operations.watchOperation({ id: started.operation!.id })) {
      if (update.operation?.currentStep) seen.push(update.operation.currentStep);
      final = update.operation;
    }
    assert.equal(final?.status, OperationStatus.SUCCEEDED, final?.error);
    assert.deepEqual(
      final?.steps.map((s) => s.name),
      ["connect", "preflight", "admin_user", "docker", "firewall", "ssh_hardening", "deploy_key", "agent"],
    );
    assert.ok(seen.length >= 2, `watch streamed progress (${seen.join(",")})`);
    for (const step of final!.steps.filter((s) => !["connect", "preflight", "agent"].includes(s.name)))
      assert.equal(step.status, "done", step.name);
    assert.equal(final!.steps.at(-1)?.status, "skipped", "no agent configured in this suite (test/agent.test.ts installs it)");
    assert.equal((await statusOf(server.id)).status, ServerStatus.CONFIGURED);

    // The host really is configured.
    assert.match(hostExec(host.name, "docker info --format '{{.ServerVersion}}'"), /^20\./);
    assert.match(hostExec(host.name, "sudo -l -U axion"), /NOPASSWD: ALL/);
    assert.match(hostExec(host.name, "nft list table inet axion_filter"), /tcp dport 22 accept/);
    assert.match(hostExec(host.name, "sshd -T | grep -i '^passwordauthentication'"), /no/);
    assert.equal(hostExec(host.name, `grep -cxF '${orchestratorKey}' /home/axion/.ssh/authorized_keys`).trim(), "1");
    // Steps share one login until the firewall; after the firewall and after the SSH hardening the next step logs in anew.
    assert.equal(hostExec(host.name, "journalctl --no-pager -o cat -t sshd | grep -c '^Accepted '").trim(), "3");

    // Re-running changes nothing and says so.
    const rerun = await alice.servers.configureServer({ id: server.id });
    const again = await waitForEnd(rerun.operation!.id);
    assert.equal(again.status, OperationStatus.SUCCEEDED, again.error);
    for (const step of again.steps.filter((s) => !["connect", "preflight", "agent"].includes(s.name)))
      assert.equal(step.status, "unchanged", `${step.name}: ${step.detail}`);

    // The firewall now drops everything but SSH: a closed port times out instead of refusing.
    const blocked = await register(host.ip, { sshPort: 2222 });
    assert.equal((await alice.servers.testServerConnection({ id: blocked.id })).outcome, ConnectionOutcome.TIMEOUT);

    // Deploy key: removed and added exactly once, other lines untouched, modes right.
    hostExec(host.name, "echo 'ssh-ed25519 AAAAother operator@laptop' >> /home/axion/.ssh/authorized_keys");
    const removed = await waitForEnd((await alice.servers.setupDeployKey({ id: server.id, action: DeployKeyAction.REMOVE })).operation!.id);
    assert.equal(removed.status, OperationStatus.SUCCEEDED, removed.error);
    assert.equal(hostExec(host.name, "cat /home/axion/.ssh/authorized_keys").trim(), "ssh-ed25519 AAAAother operator@laptop");
    for (let i = 0; i < 2; i++) {
      const added = await waitForEnd((await alice.servers.setupDeployKey({ id: server.id })).operation!.id);
      assert.equal(added.status, OperationStatus.SUCCEEDED, added.error);
      assert.equal(added.steps[0]?.status, i === 0 ? "done" : "unchanged");
    }
    assert.equal(
      hostExec(host.name, "cat /home/axion/.ssh/authorized_keys").trim(),
      `ssh-ed25519 AAAAother operator@laptop\n${orchestratorKey}`,
    );
    assert.equal(hostExec(host.name, "stat -c '%a %U' /home/axion/.ssh /home/axion/.ssh/authorized_keys").trim(), "700 axion\n600 axion");
  });

  test("a changed host key refuses the connection before any command runs", async () => {
    const host = fleet.hosts[2]!;
    const server = await register(host.ip);
    assert.equal((await alice.servers.testServerConnection({ id: server.id })).outcome, ConnectionOutcome.OK);
    regenHostKey(host.name);
    const mismatch = await alice.servers.testServerConnection({ id: server.id });
    assert.equal(mismatch.outcome, ConnectionOutcome.HOSTKEY_MISMATCH);
    const op = await waitForEnd((await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.equal(op.status, OperationStatus.FAILED);
    assert.match(op.error, /host key/);
    assert.equal(op.steps.length, 1, "failed at connect, no retries of a host key mismatch");
    assert.equal((await statusOf(server.id)).status, ServerStatus.HOSTKEY_MISMATCH);
    assert.throws(() => hostExec(host.name, "id axion"), "the bootstrap's first command (create the admin user) never ran");
  });

  test("an unsupported OS fails the preflight without retries and without touching the host", async () => {
    const server = await register(wrongOs.hosts[0]!.ip);
    const op = await waitForEnd((await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.equal(op.status, OperationStatus.FAILED);
    assert.match(op.error, /unsupported operating system: CentOS/i);
    assert.equal((await statusOf(server.id)).status, ServerStatus.ERROR);
    assert.throws(() => hostExec(wrongOs.hosts[0]!.name, "id axion"));
  });

  test("SSH failures retry with backoff, then the server is UNREACHABLE with the reason", async () => {
    await switchOwner();
    const server = await register(down.hosts[0]!.ip, { name: "unreachable-bootstrap" });
    const started = Date.now();
    const op = await waitForEnd((await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.equal(op.status, OperationStatus.FAILED);
    assert.ok(Date.now() - started >= 2000 + 4000 + 8000, "three retries with exponential backoff (2 s, 4 s, 8 s)");
    const after = await statusOf(server.id);
    assert.equal(after.status, ServerStatus.UNREACHABLE);
    assert.match(after.statusReason, /SSH failed after retries/);
  });

  test("a non-root sudo user is configured through sudo", async () => {
    const host = sudoFleet.hosts[0]!;
    const server = await register(host.ip, { sshUser: host.user });
    const op = await waitForEnd((await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
    assert.match(hostExec(host.name, "systemctl is-active docker"), /active/);
  });

  test("one provisioning operation per server at a time: a second start attaches or is refused", async () => {
    await switchOwner();
    const server = await register(fleet.hosts[1]!.ip, { name: "dup-ops" });
    const first = await alice.servers.configureServer({ id: server.id });
    const second = await alice.servers.configureServer({ id: server.id });
    assert.equal(second.operation?.id, first.operation?.id, "the same kind attaches to the running operation");
    await expectCode(alice.servers.setupDeployKey({ id: server.id }), Code.FailedPrecondition, /already has a running bootstrap/);
    await waitForEnd(first.operation!.id);
  });

  test("every value reaching the remote shell is quoted: nothing injected runs", async () => {
    const host = fleet.hosts[0]!;
    const session = await openSsh({ host: host.ip, port: 22, username: "root" }, { kind: "private_key", privateKey: fleet.privateKey });
    try {
      const nasty = [
        "$(touch /tmp/pwned1)",
        "`touch /tmp/pwned2`",
        "a'b\"c",
        "; touch /tmp/pwned3",
        "x\ny && touch /tmp/pwned4",
        "*",
        "$HOME",
      ];
      for (const value of nasty) {
        const { stdout } = await session.run(sh`printf '%s' ${value}`);
        assert.equal(stdout, value.trim(), `echoed back verbatim: ${JSON.stringify(value)}`);
      }
      // A value a command would read as an option is refused before anything is sent.
      assert.throws(() => sh`printf '%s' ${"-n"}`, /option/);
      const { stdout } = await session.run(sh`ls /tmp`);
      assert.ok(!stdout.includes("pwned"), stdout);
    } finally {
      session.close();
    }
  });

  test("no secret appears in any workflow history", async () => {
    const secrets = [fleet.privateKey.split("\n").slice(1, 3).join(""), "wrong"];
    let histories = 0;
    for await (const execution of harness.client.workflow.list()) {
      const history = await harness.client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
      const text = JSON.stringify(history, (_k, v) =>
        typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("utf8") : v,
      );
      for (const secret of secrets) assert.ok(!text.includes(secret), `${execution.workflowId} history holds a secret`);
      histories += 1;
    }
    assert.ok(histories >= 8, `read ${histories} histories`);
    const [row] = await harness.api.database.db.select().from(servers).where(eq(servers.name, "srv-1"));
    assert.ok(row?.hostKeyFingerprint);
  });
});
