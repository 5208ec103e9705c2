import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { openSsh } from "../activities/ssh/session.js";
import { sh } from "../activities/ssh/shell.js";
import { operations, outboxEvents, serverCredentials } from "../db/schema.js";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { PlanOutcome, RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { type Rollout, RolloutStatus } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { expectCode } from "./support/assertions.js";
import { holdCommand } from "./support/host-gate.js";
import { ed25519KeyPair } from "./support/keys.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, DOCKER_PREINSTALLED, downHosts, type Fleet, hostExec, upFleets } from "./support/testhosts.js";

/**
 * Servers whose login user's sudo asks for a password (test host state
 * sudo-password): the become password is fed to `sudo -S` on stdin for every
 * root step, a wrong one is refused once and classified, and the password is
 * never seen where it must not be.
 */

const orchestrator = ed25519KeyPair();
const orchestratorKey = orchestrator.publicKey.trim();
const prefix = "spw";
// Distinctive, so that finding it anywhere is the leak and nothing else.
const PASSWORD = "Become-Pw 7q'x\"$(id)-kT9";
const WRONG = "Wrong-Become-Pw-5zR1";

describe("sudo with a become password, on real hosts", { timeout: 20 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let fleet: Fleet;
  let alice: ReturnType<ProvisioningHarness["api"]["clients"]>;
  let clusterId: string;
  const printed: string[] = [];
  const writes = { out: process.stdout.write, err: process.stderr.write };

  const register = async (name: string, host: Fleet["hosts"][number], becomePassword: string) =>
    (
      await alice.servers.createServer({
        clusterId,
        name,
        host: host.ip,
        sshUser: host.user,
        credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
        becomePassword,
      })
    ).server!;

  before(async () => {
    // Every line this process prints (the worker's and the API's logs) is kept to be searched.
    for (const [stream, original] of [
      [process.stdout, writes.out],
      [process.stderr, writes.err],
    ] as const) {
      stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        printed.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
        return (original as (...a: unknown[]) => boolean).call(stream, chunk, ...rest);
      }) as typeof stream.write;
    }
    buildImage();
    downHosts(prefix);
    ({ fleet } = await upFleets({
      fleet: { prefix, count: 3, state: "sudo-password", extra: [...DOCKER_PREINSTALLED, "--user-password", PASSWORD] },
    }));
    harness = await startProvisioningHarness({ orchestratorPublicKey: orchestratorKey, sshConnectTimeoutMs: 8000 });
    alice = harness.api.clients((await harness.api.newOwner()).token);
    clusterId = (await alice.clusters.createCluster({ name: "pw" })).cluster!.id;
  });

  after(async () => {
    process.stdout.write = writes.out;
    process.stderr.write = writes.err;
    await harness?.close();
    downHosts(prefix);
  });

  test("the test host's sudo really asks deploy for a password", () => {
    const host = fleet.hosts[0]!;
    assert.equal(host.user, "deploy");
    assert.match(hostExec(host.name, "su deploy -c 'sudo -n true' 2>&1 || true"), /password is required/);
  });

  test("a bootstrap with the right become password configures the host; the password is in no process's argv or environ", async () => {
    const host = fleet.hosts[0]!;
    const server = await register("pw-right", host, PASSWORD);
    assert.equal(server.becomePasswordSet, true);
    assert.ok(!JSON.stringify(server, (_k, v) => (typeof v === "bigint" ? String(v) : v)).includes(PASSWORD), "no password in the answer");

    // Hold the admin_user step (root's useradd) and read every process of the host meanwhile.
    const gate = await holdCommand(fleet, host, "useradd", "/usr/sbin/useradd");
    const started = await alice.servers.configureServer({ id: server.id });
    await gate.reached;
    // Not /tmp: the host's /tmp is a tmpfs of its own, not the directory under host.root.
    writeFileSync(join(host.root, "root/needle"), `${PASSWORD}\n`);
    assert.equal(hostExec(host.name, "grep -caF -f /root/needle /root/needle").trim(), "1", "the search finds the password where it is");
    const leaking = hostExec(
      host.name,
      'for f in /proc/[0-9]*/cmdline /proc/[0-9]*/environ; do grep -qaF -f /root/needle "$f" 2>/dev/null && echo "$f"; done; true',
    );
    const steps = hostExec(host.name, "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\"; echo; done");
    hostExec(host.name, "rm -f /root/needle");
    await gate.release();
    assert.equal(leaking.trim(), "", `the become password is readable in ${leaking}`);
    assert.match(steps, /sudo -k -S -p {2}-- sh -c/, "the step ran through sudo -S while it was held");

    const op = await watchUntilEnd(alice.operations, started.operation!.id);
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);
    assert.equal((await alice.servers.getServer({ id: server.id })).server?.status, ServerStatus.CONFIGURED);
    assert.match(hostExec(host.name, "sudo -l -U axion"), /NOPASSWD: ALL/);
    assert.match(hostExec(host.name, "nft list table inet axion_filter"), /tcp dport 22 accept/);
  });

  test("a step's own stdin follows the password line and never sees it, whether sudo asks for it or not (NOPASSWD)", async () => {
    const host = fleet.hosts[0]!;
    const script = "first line of the script\nsecond\n";
    // deploy: sudo asks; axion (created by the bootstrap above, deploy key): NOPASSWD, so sudo reads nothing.
    for (const [username, privateKey] of [
      ["deploy", fleet.privateKey],
      ["axion", orchestrator.privateKey],
    ] as const) {
      const session = await openSsh(
        { host: host.ip, port: 22, username },
        { kind: "private_key", privateKey },
        { becomePassword: PASSWORD },
      );
      try {
        const result = await session.run(sh`id -u; cat`, { stdin: script });
        assert.equal(result.stdout, `0\n${script.trim()}`, username);
        assert.ok(!result.stderr.includes(PASSWORD) && !result.stdout.includes(PASSWORD), username);
      } finally {
        session.close();
      }
    }
  });

  test("a wrong become password fails once with 'sudo password refused', and nothing ran as root", async () => {
    const host = fleet.hosts[1]!;
    const server = await register("pw-wrong", host, WRONG);
    const before = hostExec(
      host.name,
      "journalctl --sync; journalctl --no-pager -o cat -t sudo | grep -c 'incorrect password attempt' || true",
    ).trim();
    const op = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.equal(op.status, OperationStatus.FAILED);
    assert.match(op.error, /sudo password refused/);
    assert.match(op.error, /pw-wrong/, "the error names the server");
    const attempts = hostExec(
      host.name,
      "journalctl --sync; journalctl --no-pager -o cat -t sudo | grep -c 'incorrect password attempt' || true",
    ).trim();
    assert.equal(Number(attempts) - Number(before), 1, "sudo was tried once, not retried");
    // The first root step (admin_user) would have created the user and its sudoers file.
    assert.equal(hostExec(host.name, "id -u axion >/dev/null 2>&1 && echo present || echo absent").trim(), "absent");
    assert.equal(hostExec(host.name, "test -e /etc/sudoers.d/90-axion-axion && echo present || echo absent").trim(), "absent");
    assert.equal(hostExec(host.name, "nft list table inet axion_filter >/dev/null 2>&1 && echo present || echo absent").trim(), "absent");

    // A password sudo could not read as one line is refused, naming the field; nothing is stored.
    await expectCode(alice.servers.updateServer({ id: server.id, becomePassword: "two\nlines" }), Code.InvalidArgument, /become_password/);
    // Cleared, the server says so; then the right one configures it.
    const cleared = (await alice.servers.updateServer({ id: server.id, becomePassword: "" })).server!;
    assert.equal(cleared.becomePasswordSet, false);
    const fixed = (await alice.servers.updateServer({ id: server.id, becomePassword: PASSWORD })).server!;
    assert.equal(fixed.becomePasswordSet, true);
    const again = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: server.id })).operation!.id);
    assert.equal(again.status, OperationStatus.SUCCEEDED, again.error);
  });

  test("a plan and a rollout over a password-sudo host: a wrong password plans CANNOT, the right one plans, configures and then plans UNCHANGED", async () => {
    const host = fleet.hosts[2]!;
    const server = await register("pw-rollout", host, WRONG);
    const plan = async () => (await alice.servers.planServer({ id: server.id, kind: RolloutKind.CONFIGURE })).plan!;
    const refused = await plan();
    assert.equal(refused.outcome, PlanOutcome.CANNOT);
    assert.match(refused.reason, /sudo password refused/);
    await alice.servers.updateServer({ id: server.id, becomePassword: PASSWORD });
    assert.equal((await plan()).outcome, PlanOutcome.WOULD_CHANGE);
    const { rollout } = await alice.rollouts.startRollout({ kind: RolloutKind.CONFIGURE, target: { serverIds: [server.id] } });
    let end: Rollout | undefined;
    for await (const update of alice.rollouts.watchRollout({ id: rollout!.id })) end = update.rollout;
    assert.equal(end?.status, RolloutStatus.SUCCEEDED, end?.reason);
    assert.equal((await plan()).outcome, PlanOutcome.UNCHANGED);
    assert.match(hostExec(host.name, "sudo -l -U axion"), /NOPASSWD: ALL/);
  });

  test("a user without sudo rights, and a sudo that asks a password the server has none for, are classified and not retried", async () => {
    // Servers are unique per owner by host:port: these register hosts again, as another owner.
    alice = harness.api.clients((await harness.api.newOwner()).token);
    clusterId = (await alice.clusters.createCluster({ name: "pw2" })).cluster!.id;
    const host = fleet.hosts[1]!;
    writeFileSync(join(host.root, "root/nosudo-pw"), `nosudo:${PASSWORD}\n`);
    hostExec(
      host.name,
      "useradd -m -s /bin/bash nosudo && chpasswd < /root/nosudo-pw && rm /root/nosudo-pw && install -d -o nosudo -m 0700 /home/nosudo/.ssh && install -o nosudo -m 0600 /home/deploy/.ssh/authorized_keys /home/nosudo/.ssh/",
    );
    const noRights = await alice.servers.createServer({
      clusterId,
      name: "pw-norights",
      host: host.ip,
      sshUser: "nosudo",
      credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
      becomePassword: PASSWORD,
    });
    const denied = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: noRights.server!.id })).operation!.id);
    assert.equal(denied.status, OperationStatus.FAILED);
    assert.match(denied.error, /sudo not allowed: server pw-norights \(nosudo@/);

    const none = await register("pw-none", fleet.hosts[2]!, "");
    assert.equal(none.becomePasswordSet, false);
    const asked = await watchUntilEnd(alice.operations, (await alice.servers.configureServer({ id: none.id })).operation!.id);
    assert.equal(asked.status, OperationStatus.FAILED);
    assert.match(asked.error, /sudo asks server pw-none \(deploy@.*\) for a password and the server has no become password set/);
    const attempts = async (workflowId: string) => {
      const history = await harness.client.workflow.getHandle(workflowId).fetchHistory();
      return (history.events ?? []).filter(
        (e) => e.activityTaskStartedEventAttributes && Number(e.activityTaskStartedEventAttributes.attempt) > 1,
      ).length;
    };
    assert.equal(await attempts(`bootstrap/${none.id}`), 0, "no activity was retried");
    assert.equal(await attempts(`bootstrap/${noRights.server!.id}`), 0, "no activity was retried");
  });

  test("the become password is in no log line, operation row, event or Temporal history; stored only encrypted", async () => {
    const secrets = [PASSWORD, WRONG];
    const logs = printed.join("");
    assert.match(logs, /SudoPasswordRefused/, "the worker's log lines were captured (the refused activity is logged)");
    for (const secret of secrets) assert.ok(!logs.includes(secret), "a log line holds the become password");
    const db = harness.api.database.db;
    const rows = JSON.stringify([await db.select().from(operations), await db.select().from(outboxEvents)]);
    for (const secret of secrets) assert.ok(!rows.includes(secret), "an operation row or event holds the become password");
    const stored = await db.select().from(serverCredentials);
    const envelopes = stored.map((row) => row.becomeEnvelope).filter((e) => e !== null);
    assert.equal(envelopes.length, 4, "pw-right, pw-wrong, pw-rollout and pw-norights have one; pw-none has none");
    assert.ok(
      envelopes.every((e) => e.startsWith("v1.")),
      "every become password is an envelope",
    );
    for (const secret of secrets) assert.ok(!JSON.stringify(stored).includes(secret), "stored encrypted");
    let histories = 0;
    for await (const execution of harness.client.workflow.list()) {
      const history = await harness.client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
      const text = JSON.stringify(history, (_k, v) =>
        typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("utf8") : v,
      );
      for (const secret of secrets) assert.ok(!text.includes(secret), `${execution.workflowId} history holds the become password`);
      histories += 1;
    }
    assert.ok(histories >= 3, `read ${histories} histories`);
  });
});
