import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Client } from "@connectrpc/connect";
import { runRemoteStep } from "../activities/ssh/remote-step.js";
import { openSsh } from "../activities/ssh/session.js";
import { sh } from "../activities/ssh/shell.js";
import { hasUnsafeCharacters } from "../core/kernel/text.js";
import { type Operation, type OperationService, OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { PlanOutcome, RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { ConnectionOutcome } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { ESCAPES, type HostileCommand, type HostileMode, honest, hostile } from "./support/hostile-host.js";
import { ed25519KeyPair } from "./support/keys.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, downHosts, type Fleet, hostExec, type TestHost, upHosts } from "./support/testhosts.js";

/**
 * A managed host is an attacker: its `uname`, `cat`, `df`, `sshd`, `docker`, `systemctl`, `id` and
 * `sha256sum` answer traversal strings, escapes, NULs, 10 MB, never-ending output or nothing at
 * all. Every operation and plan ends with an error naming the fact; nothing on the orchestrator is
 * read (a canary beside the agent binaries never reaches a host), run or blocked.
 */
const prefix = "phostile";
const canaryToken = `axion-canary-${randomBytes(8).toString("hex")}`;

let harness: ProvisioningHarness;
let fleet: Fleet;
let binaryDir: string;
let alice: ReturnType<ProvisioningHarness["api"]["clients"]>;
let clusterId: string;
let n = 0;

/** Follows WatchOperation until the operation ends or `done` says enough (a step of interest finished). */
async function watchUntil(operations: Client<typeof OperationService>, id: string, done: (op: Operation) => boolean): Promise<Operation> {
  let last: Operation | undefined;
  for await (const update of operations.watchOperation({ id })) {
    last = update.operation;
    if (last && (last.status !== OperationStatus.RUNNING || done(last))) break;
  }
  assert.ok(last);
  return last;
}
const stepEnded = (name: string) => (op: Operation) => op.steps.some((s) => s.name === name && s.status !== "running");

/** Where a canary could land on a host: the upload directory and every place the agent is installed. */
const canaryOnHost = (host: TestHost) =>
  hostExec(
    host.name,
    `grep -rlF '${canaryToken}' /root /home /usr/local/bin /etc/axion-agent /etc/systemd/system 2>/dev/null || true`,
  ).trim();

/** The server of a host, registered once (one server per address and port). */
const registered = new Map<string, string>();
async function register(host: TestHost): Promise<string> {
  let id = registered.get(host.name);
  if (!id) {
    id = (
      await alice.servers.createServer({
        clusterId,
        name: `hostile-${++n}`,
        host: host.ip,
        credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
      })
    ).server!.id;
    registered.set(host.name, id);
  }
  return id;
}

/** No byte a person reads carries a control or bidi character, and nothing is longer than a short excerpt allows. */
function assertDisplaySafe(text: string, what: string) {
  assert.ok(!hasUnsafeCharacters(text), `${what} is display-safe: ${JSON.stringify(text.slice(0, 300))}`);
  assert.ok(text.length <= 2000, `${what} is short (${text.length} characters)`);
}

describe("a hostile host", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    execFileSync("bash", ["scripts/build-agent.sh"], { stdio: ["ignore", "ignore", "inherit"], timeout: 10 * 60_000 });
    buildImage();
    downHosts(prefix);
    fleet = upHosts(prefix, 2, "fresh");
    // PAM's message of the day runs uname at every login: a sleeping uname would hang the login itself (bounded
    // by the step's timeout, but then no fact is read). Here uname is to answer our question, not the login's.
    for (const host of fleet.hosts) hostExec(host.name, "rm -f /etc/update-motd.d/10-uname");
    // The agent binaries, and beside them a file no host may ever receive.
    binaryDir = mkdtempSync(join(tmpdir(), "axion-hostile-agent-"));
    for (const arch of ["amd64", "arm64"]) {
      copyFileSync(join("agent", "dist", `axion-agent-linux-${arch}`), join(binaryDir, `axion-agent-linux-${arch}`));
    }
    writeFileSync(join(binaryDir, "canary.key"), `${canaryToken}\n`, { mode: 0o755 });
    harness = await startProvisioningHarness({
      orchestratorPublicKey: ed25519KeyPair().publicKey.trim(),
      sshConnectTimeoutMs: 8000,
      agent: { binaryDir, gateway: fleet.gateway, heartbeatIntervalSeconds: 1 },
    });
    alice = harness.api.clients((await harness.api.newOwner("hostile")).token);
    clusterId = (await alice.clusters.createCluster({ name: "hostile" })).cluster!.id;
  });

  after(async () => {
    await harness?.close();
    downHosts(prefix);
    if (binaryDir) rmSync(binaryDir, { recursive: true, force: true });
  });

  test("uname -m naming a local file: InstallAgent fails naming the fact, and the file never reaches the host", async () => {
    const host = fleet.hosts[0]!;
    const id = await register(host);
    hostile(host, "uname", { print: "x/../canary.key\n" });
    try {
      const started = (await alice.agents.installAgent({ id })).operation!;
      // Not past the agent step: today's code went on to wait two minutes for a registration.
      const op = await watchUntil(alice.operations, started.id, stepEnded("agent"));
      const agent = op.steps.find((s) => s.name === "agent");
      assert.equal(canaryOnHost(host), "", "the canary was never transferred");
      assert.equal(agent?.status, "failed", `the agent step fails: ${agent?.detail}`);
      const ended = await watchUntil(alice.operations, started.id, () => false);
      assert.equal(ended.status, OperationStatus.FAILED);
      assert.match(ended.error, /^uname -m: /, "the error names the fact");
      assertDisplaySafe(ended.error, "the error");
    } finally {
      honest(host);
    }
  });

  /** A hostile answer of one fact, and how the error about it begins. */
  const factCases: [HostileCommand, HostileMode, RegExp][] = [
    ["uname", { print: "x/../../../etc/passwd\n" }, /^uname -m: is not a machine name: "x\/\.\.\//],
    ["uname", { print: ESCAPES }, /^uname -m: answered 55 bytes, at most 32 expected: "\\u001b\[2J/],
    ["uname", { print: "x86_64\u0000\n" }, /^uname -m: answered control characters/],
    ["uname", "huge", /^uname -m: answered more than 4096 bytes/],
    ["uname", "endless", /^uname -m: answered more than 4096 bytes/],
    ["uname", "sleep", /^uname -m: no answer/],
    ["cat", { print: `ID=debian\nVERSION_ID="12"\nPRETTY_NAME="${ESCAPES}"\n` }, /^\/etc\/os-release: holds control characters/],
    ["cat", { print: 'ID="../../etc"\nVERSION_ID="12"\n' }, /^\/etc\/os-release ID: is not an os-release ID/],
    ["cat", "huge", /^\/etc\/os-release: answered more than 4096 bytes/],
    [
      "df",
      { print: "Filesystem 1M-blocks Used Available Capacity Mounted on\nx 1 1 lots 1% /\n" },
      /^df \/ available: is not a whole number/,
    ],
    ["df", "sleep", /^df \/: no answer/],
    ["docker", { print: ESCAPES }, /^docker --version: answered more than one line/],
    ["docker", "endless", /^docker --version: answered more than 4096 bytes/],
  ];

  test("each hostile fact ends the connection test, the configure's preflight and its plan with an error naming the fact", async () => {
    const host = fleet.hosts[1]!;
    const id = await register(host);
    for (const [command, mode, error] of factCases) {
      const what = `${command} ${typeof mode === "object" ? JSON.stringify(mode.print.toString().slice(0, 30)) : mode}`;
      hostile(host, command, mode);
      try {
        const tested = await alice.servers.testServerConnection({ id });
        assert.equal(tested.outcome, ConnectionOutcome.OK, `${what}: logged in`);
        assert.equal(tested.facts, undefined, `${what}: no facts from a hostile answer`);
        assert.match(tested.message.replace(/^connected, but the host's facts are unusable: /, ""), error, what);
        assertDisplaySafe(tested.message, `${what}: the connection test's message`);

        // The API answers while the plan reads the host.
        const planned = alice.servers.planServer({ id, kind: RolloutKind.CONFIGURE });
        assert.equal((await alice.servers.getServer({ id })).server?.id, id);
        const answer = (await planned).plan!;
        assert.equal(answer.outcome, PlanOutcome.CANNOT, what);
        const preflight = answer.steps.find((step) => step.name === "preflight");
        assert.match(preflight?.detail ?? "", error, `${what}: the plan's preflight`);
        assertDisplaySafe(answer.reason, `${what}: the plan's reason`);

        const op = await watchUntil(alice.operations, (await alice.servers.configureServer({ id })).operation!.id, () => false);
        assert.equal(op.status, OperationStatus.FAILED, what);
        assert.match(op.error, error, `${what}: the bootstrap's error`);
        assertDisplaySafe(op.error, `${what}: the bootstrap's error`);
        assert.deepEqual(
          op.steps.map((step) => [step.name, step.status]),
          [
            ["connect", "unchanged"],
            ["preflight", "failed"],
          ],
          `${what}: nothing is done after the preflight`,
        );
      } finally {
        hostile(host, command, "off");
      }
    }
  });

  test("uname -m in every hostile form: InstallAgent and its plan end with an error naming the fact", async () => {
    const host = fleet.hosts[0]!;
    const id = await register(host);
    const modes: HostileMode[] = [
      { print: "x86_64/../canary.key\n" },
      { print: "../../../../../dev/zero\n" },
      { print: "riscv64\n" },
      { print: ESCAPES },
      "huge",
      "endless",
      "sleep",
    ];
    for (const mode of modes) {
      hostile(host, "uname", mode);
      try {
        const answer = (await alice.servers.planServer({ id, kind: RolloutKind.INSTALL_AGENT })).plan!;
        const agent = answer.steps.find((step) => step.name === "agent");
        assert.equal(agent?.outcome, PlanOutcome.CANNOT);
        assert.match(agent?.detail ?? "", /^uname -m: /);
        assertDisplaySafe(answer.reason, "the plan's reason");
        const op = await watchUntil(alice.operations, (await alice.agents.installAgent({ id })).operation!.id, () => false);
        assert.equal(op.status, OperationStatus.FAILED);
        assert.match(op.error, /^uname -m: /);
        assertDisplaySafe(op.error, "the error");
      } finally {
        hostile(host, "uname", "off");
      }
    }
    assert.equal(canaryOnHost(host), "", "the canary was never transferred");
  });

  test("sshd -T answering escapes, 10 MB, endlessly or never: the hardening check fails naming sshd -T", async () => {
    const host = fleet.hosts[0]!;
    const id = await register(host);
    const modes: [HostileMode, RegExp][] = [
      [{ print: ESCAPES }, /sshd -T: answered something that is not sshd's settings/],
      [{ print: "port 22\npermitrootlogin \u001b]52;c;eA==\u0007\n" }, /sshd -T: answered something that is not sshd's settings/],
      ["huge", /sshd -T: answered something that is not sshd's settings/],
      ["endless", /sshd -T: answered something that is not sshd's settings/],
      ["sleep", /sshd -T failed on the host's own configuration/],
    ];
    for (const [mode, error] of modes) {
      hostile(host, "sshd", mode);
      try {
        const answer = (await alice.servers.planServer({ id, kind: RolloutKind.CONFIGURE })).plan!;
        const hardening = answer.steps.find((step) => step.name === "ssh_hardening");
        assert.equal(hardening?.outcome, PlanOutcome.CANNOT, hardening?.detail);
        assert.match(hardening?.detail ?? "", error);
        for (const step of answer.steps) assertDisplaySafe(step.detail, `${step.name}'s detail`);
      } finally {
        hostile(host, "sshd", "off");
      }
    }
  });

  test("df answering garbage or never, a hostile systemctl and docker: the recovery and its plan end naming the fact, bounded in time", async () => {
    const host = fleet.hosts[1]!;
    const id = await register(host);
    hostile(host, "df", { print: `Filesystem Type 1024-blocks Used Available Capacity Mounted on\nx overlay 1 1 1 50% /${ESCAPES}\n` });
    try {
      const answer = (await alice.servers.planServer({ id, kind: RolloutKind.RECOVER })).plan!;
      assert.match(answer.steps.find((step) => step.name === "diagnose")?.detail ?? "", /^df: /);
      assertDisplaySafe(answer.reason, "the plan's reason");
      const op = await watchUntil(alice.operations, (await alice.servers.recoverServer({ id })).operation!.id, () => false);
      assert.equal(op.status, OperationStatus.FAILED);
      assert.match(op.error, /^df: /);
      assertDisplaySafe(op.error, "the recovery's error");
    } finally {
      hostile(host, "df", "off");
    }
    // A docker that never answers and a systemctl that never ends: the diagnosis still ends, in bounded time.
    hostile(host, "docker", "sleep");
    hostile(host, "systemctl", "sleep");
    try {
      const started = Date.now();
      const answer = (await alice.servers.planServer({ id, kind: RolloutKind.RECOVER })).plan!;
      assert.ok(Date.now() - started < 40_000, `answered in ${Date.now() - started} ms`);
      assert.match(answer.steps.find((step) => step.name === "diagnose")?.detail ?? "", /^docker stopped;/, answer.reason);
    } finally {
      honest(host);
    }
  });

  test("a step's output is capped: a never-ending or 10 MB answer is killed as too much, a sleeping command at the step's timeout", async () => {
    const host = fleet.hosts[1]!;
    const session = await openSsh(
      { host: host.ip, port: host.port, username: "root" },
      { kind: "private_key", privateKey: fleet.privateKey },
    );
    try {
      for (const command of [sh`yes`, sh`head -c 10485760 /dev/zero | tr '\\0' A`]) {
        const started = Date.now();
        await assert.rejects(runRemoteStep(session, command, { step: "flood", timeoutMs: 60_000 }), (error: Error) => {
          assert.match(error.message, /^flood: answered more than 4 MB; the command was killed$/);
          return true;
        });
        assert.ok(Date.now() - started < 30_000, `stopped after ${Date.now() - started} ms`);
        assert.equal(hostExec(host.name, "pgrep -x yes || true").trim(), "", "the command was killed on the host");
      }
    } finally {
      session.close();
    }
    const sleeper = await openSsh(
      { host: host.ip, port: host.port, username: "root" },
      { kind: "private_key", privateKey: fleet.privateKey },
    );
    try {
      const started = Date.now();
      await assert.rejects(runRemoteStep(sleeper, sh`sleep 3600`, { step: "nap", timeoutMs: 2000 }), (error: Error) => {
        assert.match(error.message, /^nap: remote command timed out after 2000 ms/);
        return true;
      });
      assert.ok(Date.now() - started < 20_000, `stopped after ${Date.now() - started} ms`);
    } finally {
      sleeper.close();
    }
  });

  test("afterwards: no host holds the canary", () => {
    for (const host of fleet.hosts) assert.equal(canaryOnHost(host), "", host.name);
  });
});
