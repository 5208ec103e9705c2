import assert from "node:assert/strict";
import { test } from "node:test";
import { ApplicationFailure } from "@temporalio/common";
import { agentStateOf } from "../activities/host-facts/agent-state.js";
import { agentArchOf, machineOf } from "../activities/host-facts/arch.js";
import { diagnosisOf } from "../activities/host-facts/diagnosis.js";
import { osReleaseOf } from "../activities/host-facts/os-release.js";
import { readHostAnswers } from "../activities/host-facts/read.js";
import { dockerVersionOf, homeOf, memoryMbOf, rootFreeMbOf } from "../activities/host-facts/resources.js";
import { MAX_DETAIL, parseStepOutput } from "../activities/host-facts/step-result.js";
import type { SshSession } from "../activities/ssh/session.js";
import { hasUnsafeCharacters } from "../core/kernel/text.js";
import { FailureType } from "../workflows/failure-types.js";

/** The bounded parsers of what a host answers: each refusal is a non-retryable failure naming the fact, quoting it escaped. */
const b = (text: string) => Buffer.from(text);
function refused(run: () => unknown, message: RegExp) {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ApplicationFailure);
    assert.equal(error.type, FailureType.HostAnswerInvalid);
    assert.equal(error.nonRetryable, true);
    assert.match(error.message, message);
    assert.ok(!hasUnsafeCharacters(error.message), `escaped: ${JSON.stringify(error.message)}`);
    assert.ok(error.message.length < 200, "a short excerpt");
    return true;
  });
}

async function refusedAsync(answer: Promise<unknown>, message: RegExp) {
  const error = await answer.then(
    () => assert.fail("refused"),
    (e: unknown) => e,
  );
  refused(() => {
    throw error;
  }, message);
}

test("uname -m selects an agent build only through the allow-list", () => {
  assert.equal(agentArchOf(b("x86_64\n")), "amd64");
  assert.equal(agentArchOf(b("aarch64\n")), "arm64");
  for (const hostile of ["x/../canary.key", "../../../dev/zero", "constructor", "__proto__", "riscv64", "x86_64 ", "AMD64"]) {
    refused(() => agentArchOf(b(`${hostile}\n`)), /^uname -m: no agent is built for this architecture: "/);
  }
  assert.equal(machineOf(b("riscv64\n")), "riscv64", "an unsupported machine is a fact the preflight refuses, by name");
  refused(() => machineOf(b("x/../../etc/passwd\n")), /^uname -m: is not a machine name: "x\/\.\.\/\.\.\/etc\/passwd"$/);
  refused(() => machineOf(b("x86_64\u001b]52;c;eA==\u0007\n")), /^uname -m: answered control characters or binary: "x86_64\\u001b\]52/);
  refused(() => machineOf(b("A".repeat(4096))), /^uname -m: answered 4096 bytes, at most 32 expected: "A{40}…"$/);
  refused(() => machineOf(b("")), /^uname -m: no answer$/);
});

test("/etc/os-release: quoted values read, each field bounded, escapes refused", () => {
  assert.deepEqual(osReleaseOf(b('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')), {
    id: "debian",
    versionId: "12",
    prettyName: "Debian GNU/Linux 12 (bookworm)",
  });
  assert.deepEqual(osReleaseOf(b("ID='centos'\nVERSION_ID=6\n")), { id: "centos", versionId: "6", prettyName: "" });
  refused(() => osReleaseOf(b('ID=debian\nPRETTY_NAME="\u001b[2Jx"\n')), /^\/etc\/os-release: holds control characters or binary/);
  refused(() => osReleaseOf(b('ID="../../etc"\n')), /^\/etc\/os-release ID: is not an os-release ID: "\.\.\/\.\.\/etc"$/);
  refused(() => osReleaseOf(b(`ID=debian\nPRETTY_NAME="${"x".repeat(500)}"\n`)), /^\/etc\/os-release PRETTY_NAME: answered 500 bytes/);
  refused(() => osReleaseOf(b("VERSION_ID=12\n")), /^\/etc\/os-release ID: no answer$/);
});

test("df, MemTotal, docker --version and HOME: their one shape each", () => {
  assert.equal(rootFreeMbOf(b("Filesystem 1048576-blocks Used Available Capacity Mounted on\n/dev/sda1 20000 5000 15000 25% /\n")), 15000);
  refused(() => rootFreeMbOf(b("Filesystem\n/dev/sda1 1 1 1e9 1% /\n")), /^df \/ available: is not a whole number/);
  refused(() => rootFreeMbOf(b("h\nx 1 1 1 1% /\nsecond 1 1 1 1% /\n")), /^df \/: answered 3 lines/);
  assert.equal(memoryMbOf(b("MemTotal:       2048000 kB\n")), 2000);
  refused(() => memoryMbOf(b("MemTotal: lots kB\n")), /^MemTotal: is not a MemTotal line/);
  assert.equal(dockerVersionOf(b("Docker version 20.10.24+dfsg1, build 297e128\n")), "20.10.24+dfsg1");
  refused(() => dockerVersionOf(b("Docker version $(reboot), build x\n")), /^docker --version: is not a Docker version line/);
  assert.equal(homeOf(b("/home/deploy")), "/home/deploy");
  refused(() => homeOf(b("/home/../etc")), /^HOME: is not a plain path/);
  refused(() => homeOf(b("relative")), /^HOME: is not an absolute path/);
});

test("facts arrive one line each: an answer cannot pose as another, nor come twice", async () => {
  const session = (stdout: string): SshSession =>
    ({
      fingerprint: "",
      run: async () => ({ code: 0, stdout, stderr: "", truncated: false }),
      upload: async () => {},
      attach: () => {},
      isOpen: () => true,
      close: () => {},
    }) as SshSession;
  const hex = (text: string) => Buffer.from(text).toString("hex");
  const answers = await readHostAnswers(session(`fact0 ${hex("x86_64\n")}\nfact1`), ["uname -m", "uname -r"]);
  assert.equal(answers.get("uname -m")?.toString(), "x86_64\n");
  assert.equal(answers.get("uname -r")?.length, 0, "an empty answer (trimmed of its separator) is empty, not missing");
  await refusedAsync(readHostAnswers(session(`fact0 ${hex("a")}\nfact0 ${hex("b")}`), ["uname -m"]), /^uname -m: answered twice$/);
  await refusedAsync(readHostAnswers(session("kernel=1"), ["uname -m"]), /^facts: answered a line that is no fact: "kernel=1"$/);
  await refusedAsync(readHostAnswers(session(""), ["uname -m"]), /^uname -m: no answer$/);
  await refusedAsync(readHostAnswers(session(`fact0 ${"41".repeat(4097)}`), ["uname -m"]), /^uname -m: answered more than 4096 bytes/);
});

test("a step's result: a known state, the detail escaped and cut; no result line is an error naming the step", () => {
  assert.deepEqual(parseStepOutput("noise\nAXION_RESULT unchanged docker running\n", "docker"), {
    changed: false,
    skipped: false,
    state: "unchanged",
    detail: "docker running",
  });
  const hostile = parseStepOutput(`AXION_RESULT changed \u001b]52;c;eA==\u0007 ${"x".repeat(1000)}`, "docker");
  assert.ok(!hasUnsafeCharacters(hostile.detail));
  assert.ok(hostile.detail.length <= MAX_DETAIL + 20);
  refused(() => parseStepOutput("all fine, trust me", "firewall"), /^firewall: finished without a result line$/);
  refused(() => parseStepOutput("AXION_RESULT pwned x", "firewall"), /^firewall: answered an unknown result: "pwned"$/);
  assert.equal(agentStateOf("binary differs\n"), "binary differs");
  refused(() => agentStateOf("ok\u001b[2J"), /^agent state \(sha256sum, systemctl\): answered none of its known states/);
});

test("the diagnosis: bounded mounts, known docker states, nothing else", () => {
  assert.deepEqual(diagnosisOf("mount / 40 1000\ndocker stopped\njournal_mb 12\n"), {
    mounts: [{ mount: "/", usedPct: 40, availableMb: 1000 }],
    docker: "stopped",
    journalMb: 12,
  });
  refused(() => diagnosisOf("mount / 400 1\ndocker absent\njournal_mb 0"), /^df used %: is not a whole number up to 100/);
  refused(() => diagnosisOf("mount /\u001b[2J 4 1\ndocker absent\njournal_mb 0"), /^df: answered control characters/);
  refused(() => diagnosisOf("docker absent\njournal_mb 0"), /^df: listed no mount$/);
  refused(() => diagnosisOf("mount / 4 1\ndocker pwned\njournal_mb 0"), /^docker state: is none of its known states/);
  refused(() => diagnosisOf("mount / 4 1\ndocker absent\nrm -rf /"), /^diagnosis: answered a line that is none of its facts/);
  const many = Array.from({ length: 65 }, (_, i) => `mount /m${i} 1 1`).join("\n");
  refused(() => diagnosisOf(`${many}\ndocker absent\njournal_mb 0`), /^df: listed more than 64 mounts$/);
});
