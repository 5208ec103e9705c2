import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { runPlan } from "../core/operations/plans.js";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { PlanOutcome, RolloutKind, type ServerPlan } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { ConnectionOutcome, ServerStatus } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { expectCode } from "./support/assertions.js";
import { ed25519KeyPair } from "./support/keys.js";
import { watchUntilEnd } from "./support/operations.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, downHosts, type Fleet, hostExec, regenHostKey, upHosts } from "./support/testhosts.js";

const orchestratorKey = ed25519KeyPair().publicKey.trim();
const prefixes = { fresh: "plfresh", wrongOs: "plwrongos", down: "pldown", docker: "pldocker" };

/**
 * What a plan must leave as it was: every file and directory under the roots a step could touch
 * (type, size, mode, owner, mtime and ctime), the same of /run (without the message of the day
 * PAM writes at every login), and the state of every systemd unit (`systemctl list-units --all`).
 */
const FS_ROOTS = "/etc /usr /home /root /var/lib /opt";
const snapshot = (host: string, tag: string) =>
  hostExec(
    host,
    `find ${FS_ROOTS} -printf '%p %y %s %m %U:%G %T@ %C@\\n' 2>/dev/null | sort > /tmp/axion-plan-fs-${tag}
find /run -mindepth 1 -path /run/motd.dynamic -prune -o -printf '%p %y %s %m %U:%G %T@ %C@\\n' 2>/dev/null | sort > /tmp/axion-plan-run-${tag}
systemctl list-units --all --no-legend --plain | awk '{ print $1, $3, $4 }' | sort > /tmp/axion-plan-units-${tag}`,
  );
const changes = (host: string, a: string, b: string) =>
  hostExec(host, `for k in fs run units; do diff /tmp/axion-plan-$k-${a} /tmp/axion-plan-$k-${b}; done || true`).trim();
const UNCHANGED = "no file under /etc /usr /home /root /var/lib /opt or /run and no unit's state changed";

/**
 * The host's processes, without this listing's own and without the traces a
 * login itself leaves while it ends (sshd's per-connection processes, the
 * listener's count of connections, logind's user manager for the login).
 */
const processes = (host: string) =>
  hostExec(
    host,
    `ps -eo pid=,ppid=,args= | awk -v me=$$ '$1 != me && $2 != me { $2 = ""; print }' |
      grep -vE ' sshd: [^/]|systemd --user|\\(sd-pam\\)' | sed -E 's/\\[listener\\].*/[listener]/' | sort`,
  ).trim();

/** Waits until the process list is `expected` again (a login's sshd and user manager end a moment after it). */
async function processesSettleTo(host: string, expected: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let now = processes(host);
  while (now !== expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    now = processes(host);
  }
  assert.equal(now, expected, "the same processes run before and after the plan");
}

describe("plans (check mode) on real hosts", { timeout: 30 * 60_000 }, () => {
  let harness: ProvisioningHarness;
  let fleet: Fleet;
  let wrongOs: Fleet;
  let down: Fleet;
  let dockerHost: Fleet;
  let alice: ReturnType<ProvisioningHarness["api"]["clients"]>;
  let aliceId: string;
  let clusterId: string;
  let configured: { id: string; host: string };
  let n = 0;

  const register = async (host: string, key: string) =>
    (
      await alice.servers.createServer({
        clusterId,
        name: `plan-${++n}`,
        host,
        credential: { method: { case: "privateKey", value: { key } } },
      })
    ).server!;
  const plan = async (id: string, kind = RolloutKind.CONFIGURE) => (await alice.servers.planServer({ id, kind })).plan!;
  const steps = (p: ServerPlan) => Object.fromEntries(p.steps.map((s) => [s.name, s]));
  const outcomeName = (o: PlanOutcome) => PlanOutcome[o];

  before(async () => {
    execFileSync("bash", ["scripts/build-agent.sh"], { stdio: ["ignore", "ignore", "inherit"], timeout: 10 * 60_000 });
    buildImage();
    for (const p of Object.values(prefixes)) downHosts(p);
    fleet = upHosts(prefixes.fresh, 2, "fresh");
    wrongOs = upHosts(prefixes.wrongOs, 1, "wrong-os");
    down = upHosts(prefixes.down, 1, "sshd-down");
    dockerHost = upHosts(prefixes.docker, 1, "fresh");
    // Docker from the image's offline packages; a container of a local image that restarts always; then Docker
    // stopped: its socket still listens, so anything that asks Docker starts it (and the container with it).
    hostExec(
      dockerHost.hosts[0]!.name,
      `apt-get install -y -qq docker.io >/dev/null 2>&1
tar -ch /usr/bin/sleep /lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2 2>/dev/null | docker import - local/sleep:1 >/dev/null
docker run -d --restart=always --name keeper local/sleep:1 /usr/bin/sleep infinity >/dev/null
systemctl stop docker.service 2>/dev/null
systemctl is-active docker.socket`,
    );
    harness = await startProvisioningHarness({
      orchestratorPublicKey: orchestratorKey,
      sshConnectTimeoutMs: 4000,
      agent: { binaryDir: join(process.cwd(), "agent", "dist"), gateway: fleet.gateway, heartbeatIntervalSeconds: 1 },
    });
    const owner = await harness.api.newOwner("planner");
    aliceId = owner.ownerId;
    alice = harness.api.clients(owner.token);
    clusterId = (await alice.clusters.createCluster({ name: "plans" })).cluster!.id;
  });

  after(async () => {
    await harness?.close();
    for (const p of Object.values(prefixes)) downHosts(p);
  });

  test("on a fresh host a configure plan says what every step would change, and changes nothing", async () => {
    const host = fleet.hosts[0]!;
    const server = await register(host.ip, fleet.privateKey);
    configured = { id: server.id, host: host.name };
    const quiet = processes(host.name);
    snapshot(host.name, "fresh-before");

    const answer = await plan(server.id);
    assert.equal(answer.serverId, server.id);
    assert.equal(answer.serverName, server.name);
    assert.equal(outcomeName(answer.outcome), "WOULD_CHANGE", answer.reason);
    assert.deepEqual(
      answer.steps.map((s) => s.name),
      ["connect", "preflight", "admin_user", "docker", "firewall", "ssh_hardening", "deploy_key", "agent"],
      "the steps of ConfigureServer, in its order",
    );
    const by = steps(answer);
    assert.equal(outcomeName(by.preflight!.outcome), "UNCHANGED", "the preflight checks, it changes nothing");
    assert.match(by.preflight!.detail, /Debian GNU\/Linux 12/);
    const expected: Record<string, RegExp> = {
      connect: /^pin host key SHA256:/,
      admin_user: /create user axion.*grant axion passwordless sudo/,
      docker: /^install docker\.io$/,
      firewall: /add nftables table inet axion_filter: input dropped except ssh on tcp 22/,
      ssh_hardening: /disable password login/,
      deploy_key: /add the deploy key for axion/,
      agent: /^install axion-agent \d+\.\d+\.\d+ \(not installed\)$/,
    };
    for (const [name, detail] of Object.entries(expected)) {
      assert.equal(outcomeName(by[name]!.outcome), "WOULD_CHANGE", `${name}: ${by[name]!.detail}`);
      assert.match(by[name]!.detail, detail, name);
    }

    // Nothing happened: no host key pinned, no status change, no operation, the host as it was.
    const after = (await alice.servers.getServer({ id: server.id })).server!;
    assert.equal(after.hostKeyFingerprint, "", "a plan pins no host key");
    assert.equal(after.status, ServerStatus.PENDING);
    assert.equal((await alice.operations.listOperations({ serverId: server.id })).operations.length, 0);
    snapshot(host.name, "fresh-after");
    assert.equal(changes(host.name, "fresh-before", "fresh-after"), "", UNCHANGED);
    assert.throws(() => hostExec(host.name, "id axion"), "no admin user");
    await processesSettleTo(host.name, quiet);
  });

  test("a server busy with an operation cannot be planned; after ConfigureServer every step is unchanged, and the plan still changes nothing", async () => {
    const started = await alice.servers.configureServer({ id: configured.id });
    const busy = await plan(configured.id);
    assert.equal(outcomeName(busy.outcome), "CANNOT");
    assert.match(busy.reason, new RegExp(`^busy: the bootstrap operation ${started.operation!.id} is running`));
    assert.equal(busy.steps.length, 0, "a busy server is not connected to");
    const op = await watchUntilEnd(alice.operations, started.operation!.id);
    assert.equal(op.status, OperationStatus.SUCCEEDED, op.error);

    const quiet = processes(configured.host);
    snapshot(configured.host, "configured-before");
    const answer = await plan(configured.id);
    assert.equal(outcomeName(answer.outcome), "UNCHANGED", answer.reason);
    assert.equal(answer.steps.length, 8);
    for (const step of answer.steps) assert.equal(outcomeName(step.outcome), "UNCHANGED", `${step.name}: ${step.detail}`);
    const by = steps(answer);
    assert.match(by.connect!.detail, /^host key SHA256:\S+ as pinned$/);
    assert.match(by.firewall!.detail, /firewall active, ssh open on tcp 22/);
    assert.match(by.agent!.detail, /axion-agent \d+\.\d+\.\d+ running and registered/);
    snapshot(configured.host, "configured-after");
    assert.equal(changes(configured.host, "configured-before", "configured-after"), "", UNCHANGED);
    await processesSettleTo(configured.host, quiet);
  });

  test("every kind plans with its operation's steps on a configured host", async () => {
    const kinds: [RolloutKind, Record<string, [string, RegExp]>][] = [
      [RolloutKind.TEST_CONNECTION, { connect: ["UNCHANGED", /as pinned/] }],
      [RolloutKind.DEPLOY_KEY_ADD, { deploy_key_add: ["UNCHANGED", /key already authorized for axion/] }],
      [RolloutKind.DEPLOY_KEY_REMOVE, { deploy_key_remove: ["WOULD_CHANGE", /^remove the deploy key for axion$/] }],
      [RolloutKind.INSTALL_AGENT, { agent: ["WOULD_CHANGE", /^reinstall axion-agent \S+ \(rotates its token\)$/] }],
      [
        RolloutKind.RECOVER,
        {
          diagnose: ["UNCHANGED", /docker responsive/],
          prune_docker: ["UNCHANGED", /no mount at or above 85% used/],
          vacuum_journal: ["UNCHANGED", /no mount at or above 85% used/],
          restart_docker: ["UNCHANGED", /docker responsive/],
        },
      ],
    ];
    for (const [kind, expected] of kinds) {
      const answer = await plan(configured.id, kind);
      assert.deepEqual(
        answer.steps.map((s) => s.name),
        ["connect", ...Object.keys(expected).filter((name) => name !== "connect")],
        RolloutKind[kind],
      );
      for (const [name, [outcome, detail]] of Object.entries(expected)) {
        const step = steps(answer)[name]!;
        assert.equal(outcomeName(step.outcome), outcome, `${RolloutKind[kind]} ${name}: ${step.detail}`);
        assert.match(step.detail, detail, `${RolloutKind[kind]} ${name}`);
      }
    }
    assert.equal(hostExec(configured.host, `grep -cxF '${orchestratorKey}' /home/axion/.ssh/authorized_keys`).trim(), "1", "still there");
  });

  test("cannot, with the reason: unsupported OS, unreachable, host key changed; a fleet's plan answers in input order", async () => {
    const wrong = await register(wrongOs.hosts[0]!.ip, wrongOs.privateKey);
    const refused = await register(down.hosts[0]!.ip, down.privateKey);
    const rekeyed = await register(fleet.hosts[1]!.ip, fleet.privateKey);
    assert.equal((await alice.servers.testServerConnection({ id: rekeyed.id })).outcome, ConnectionOutcome.OK);
    const pinned = (await alice.servers.getServer({ id: rekeyed.id })).server!;
    regenHostKey(fleet.hosts[1]!.name);

    const ids = [wrong.id, configured.id, refused.id, rekeyed.id];
    const owner = { id: aliceId, name: "planner", role: "admin" as const };
    const fleetPlan = await runPlan(
      { db: harness.api.database.db, workflows: { client: harness.client, taskQueue: harness.taskQueue } },
      owner,
      "configure",
      ids,
    );
    assert.deepEqual(
      fleetPlan.servers.map((s) => s.serverId),
      ids,
      "in input order",
    );
    const [os, ok, unreachable, mismatch] = fleetPlan.servers;
    assert.equal(os?.outcome, "cannot");
    assert.match(os?.reason ?? "", /^preflight: unsupported operating system: CentOS/i);
    assert.deepEqual(
      os?.steps.map((s) => s.name),
      ["connect", "preflight"],
      "nothing is checked after a preflight that refuses the host",
    );
    assert.equal(ok?.outcome, "unchanged");
    assert.equal(unreachable?.outcome, "cannot");
    assert.match(unreachable?.reason ?? "", /^unreachable/);
    assert.equal(mismatch?.outcome, "cannot");
    assert.match(mismatch?.reason ?? "", /^host key mismatch: .*the host presents SHA256:/);
    const after = (await alice.servers.getServer({ id: rekeyed.id })).server!;
    assert.equal(after.hostKeyFingerprint, pinned.hostKeyFingerprint, "the pin is kept");
    assert.equal(after.status, pinned.status, "a plan changes no status");
    assert.throws(() => hostExec(wrongOs.hosts[0]!.name, "id axion"));
  });

  test("on a host whose Docker is installed but stopped, with a restart-always container, no plan starts Docker or anything else", async () => {
    const host = dockerHost.hosts[0]!;
    assert.equal(hostExec(host.name, "systemctl is-active docker.service || true").trim(), "inactive");
    const server = await register(host.ip, dockerHost.privateKey);
    const quiet = processes(host.name);
    snapshot(host.name, "docker-before");
    const answers = new Map<RolloutKind, ServerPlan>();
    for (const kind of [
      RolloutKind.CONFIGURE,
      RolloutKind.RECOVER,
      RolloutKind.DEPLOY_KEY_ADD,
      RolloutKind.DEPLOY_KEY_REMOVE,
      RolloutKind.INSTALL_AGENT,
      RolloutKind.TEST_CONNECTION,
    ]) {
      answers.set(kind, await plan(server.id, kind));
    }
    snapshot(host.name, "docker-after");
    assert.equal(changes(host.name, "docker-before", "docker-after"), "", UNCHANGED);
    await processesSettleTo(host.name, quiet);

    assert.equal(steps(answers.get(RolloutKind.CONFIGURE)!).docker?.detail, "start docker");
    const recover = steps(answers.get(RolloutKind.RECOVER)!);
    assert.match(recover.diagnose!.detail, /^docker stopped;/);
    assert.equal(outcomeName(recover.restart_docker!.outcome), "WOULD_CHANGE");
    assert.equal(recover.restart_docker!.detail, "start docker: it is stopped");
  });

  test("PlanServer: InvalidArgument naming kind for UNSPECIFIED, NotFound for another owner's server", async () => {
    await expectCode(alice.servers.planServer({ id: configured.id, kind: RolloutKind.UNSPECIFIED }), Code.InvalidArgument, /^kind: /);
    await expectCode(alice.servers.planServer({ id: configured.id, kind: 99 as RolloutKind }), Code.InvalidArgument, /^kind: /);
    await expectCode(alice.servers.planServer({ id: "not-a-uuid", kind: RolloutKind.CONFIGURE }), Code.InvalidArgument, /^id: /);
    const bob = harness.api.clients((await harness.api.newOwner("bob")).token);
    await expectCode(bob.servers.planServer({ id: configured.id, kind: RolloutKind.CONFIGURE }), Code.NotFound);
    const owner = { id: aliceId, name: "planner", role: "admin" as const };
    const deps = { db: harness.api.database.db, workflows: { client: harness.client, taskQueue: harness.taskQueue } };
    await assert.rejects(runPlan(deps, owner, "configure", []), /server_ids: must name at least one server/);
    await assert.rejects(runPlan(deps, owner, "configure", [configured.id, configured.id]), /server_ids: names .* twice/);
  });
});
