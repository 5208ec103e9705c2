import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Client } from "@connectrpc/connect";
import { hasUnsafeCharacters } from "../core/text.js";
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

const register = async (host: TestHost) =>
  (
    await alice.servers.createServer({
      clusterId,
      name: `hostile-${++n}`,
      host: host.ip,
      credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
    })
  ).server!.id;

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
});
