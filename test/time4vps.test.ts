import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, test } from "node:test";
import { ensureApplicationFailure } from "@temporalio/common";
import {
  nonRetryableProviderErrors,
  ProviderAuthError,
  ProviderError,
  type ProviderErrorKind,
  type VpsProvider,
} from "../activities/providers/provider.js";
import { createTime4vpsProvider } from "../activities/providers/time4vps.js";
import { startTime4vpsStandIn, type Time4vpsStandIn } from "./support/time4vps-standin.js";

const username = "ops@axion.example";
const password = "s3cret-Pa55word-4-time4vps";
const sshKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkZtQx9J2x7a8c0rUuTqfQm1mN8wZsGv3Qe5xPq1bYv axion@orchestrator";

/** Asserts that a call fails with a ProviderError of this kind, and returns it. */
async function expectKind(call: Promise<unknown>, kind: ProviderErrorKind, pattern?: RegExp): Promise<ProviderError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ProviderError, `expected a ProviderError, got ${String(error)}`);
    assert.equal(error.kind, kind, `kind for "${error.message}"`);
    if (pattern) assert.match(error.message, pattern);
    return error;
  }
  assert.fail(`expected a ${kind} ProviderError, but the call succeeded`);
}

function assertNoSecrets(error: Error) {
  const text = `${error.message} ${String(error.cause ?? "")}`;
  for (const secret of [password, sshKey, sshKey.split(" ")[1] as string, Buffer.from(`${username}:${password}`).toString("base64")]) {
    assert.ok(!text.includes(secret), `"${error.message}" leaks a secret`);
  }
}

describe("Time4VPS provider against the stand-in", () => {
  let standIn: Time4vpsStandIn;
  let provider: VpsProvider;

  before(async () => {
    standIn = await startTime4vpsStandIn({
      username,
      password,
      servers: [
        { id: 101, oses: ["debian-12-x86_64", "ubuntu-22.04-x86_64"], os: "debian-12-x86_64", ip: "203.0.113.10" },
        { id: 102, oses: ["debian-12-x86_64"], ip: "203.0.113.11" },
        { id: 103, oses: ["ubuntu-22.04-x86_64"], os: "ubuntu-22.04-x86_64", ip: "203.0.113.12" },
      ],
      taskPhase: { polls: 2 },
    });
    provider = createTime4vpsProvider({ baseUrl: standIn.baseUrl, username, password, timeoutMs: 2000 });
  });
  after(() => standIn?.close());
  beforeEach(() => {
    standIn.requests.length = 0;
  });

  test("lists a server's OS codes", async () => {
    assert.equal(provider.name, "time4vps");
    assert.deepEqual(await provider.listOperatingSystems("101"), ["debian-12-x86_64", "ubuntu-22.04-x86_64"]);
    assert.deepEqual(standIn.requests, [{ method: "GET", path: "server/101/oses", user: username, body: undefined }]);
  });

  test("reads server details", async () => {
    assert.deepEqual(await provider.getServer("101"), { id: "101", status: "Active", ip: "203.0.113.10", os: "debian-12-x86_64" });
    assert.deepEqual(await provider.getServer("102"), { id: "102", status: "Active", ip: "203.0.113.11", os: undefined }, "no OS yet");
    assert.equal(standIn.requests[0]?.path, "server/101");
  });

  test("reinstall posts os, ssh_key and script, and a task runs through to succeeded", async () => {
    const { taskId } = await provider.reinstall("101", { os: "ubuntu-22.04-x86_64", sshKey, script: "403" });
    assert.match(taskId, /^\d+$/);
    assert.deepEqual(standIn.requests[0], {
      method: "POST",
      path: "server/101/reinstall",
      user: username,
      body: { os: "ubuntu-22.04-x86_64", ssh_key: sshKey, script: 403 },
    });

    const states: string[] = [];
    let last = { state: "", detail: "" };
    for (let i = 0; i < 8 && last.state !== "succeeded"; i++) {
      last = await provider.getTask("101", taskId);
      states.push(last.state);
    }
    assert.deepEqual(states, ["pending", "pending", "running", "running", "succeeded"]);
    assert.match(
      last.detail,
      /^server_recreate completed at \S+: Server reinstalled successfully\. Username: root Password: \[redacted\]$/,
    );
    assert.equal(standIn.server(101).os, "ubuntu-22.04-x86_64");
    assert.equal((await provider.getServer("101")).os, "ubuntu-22.04-x86_64");
  });

  test("unset ssh_key and script are sent as null, as the PHP library does", async () => {
    const { taskId } = await provider.reinstall("102", { os: "debian-12-x86_64" });
    assert.deepEqual(standIn.requests[0]?.body, { os: "debian-12-x86_64", ssh_key: null, script: null });
    assert.equal((await provider.getTask("102", taskId)).state, "pending");
    await expectKind(provider.reinstall("102", { os: "debian-12-x86_64" }), "unavailable", /HTTP 409: Server has an active task/);
  });

  test("a failed task maps to failed and keeps the provider's reason", async () => {
    standIn.failNextTask("Error: image deployment failed on node");
    const { taskId } = await provider.reinstall("103", { os: "ubuntu-22.04-x86_64", sshKey });
    let last = { state: "", detail: "" };
    for (let i = 0; i < 8 && last.state !== "succeeded" && last.state !== "failed"; i++) {
      last = await provider.getTask("103", taskId);
    }
    assert.equal(last.state, "failed");
    assert.match(last.detail, /image deployment failed on node/);
  });

  test("wrong credentials are an auth error, whatever the HTTP status", async () => {
    const wrong = createTime4vpsProvider({ baseUrl: standIn.baseUrl, username, password: "not-the-password", timeoutMs: 2000 });
    const error = await expectKind(wrong.getServer("101"), "auth", /wronglogin/);
    assert.equal(error.status, 401);
    assert.ok(error instanceof ProviderAuthError);
    assertNoSecrets(error);

    // The PHP library looks only at the body; an answer of 200 with wronglogin is still a refusal.
    const lenient = await startTime4vpsStandIn({ username, password, servers: [], wrongLoginStatus: 200 });
    try {
      const wrongAgain = createTime4vpsProvider({ baseUrl: lenient.baseUrl, username: "someone", password, timeoutMs: 2000 });
      assertNoSecrets(await expectKind(wrongAgain.listOperatingSystems("1"), "auth"));
    } finally {
      await lenient.close();
    }
  });

  test("an unknown server or task is not_found; an OS not offered is invalid", async () => {
    await expectKind(provider.getServer("999"), "not_found", /HTTP 404: Server not found/);
    await expectKind(provider.listOperatingSystems("999"), "not_found");
    await expectKind(provider.getTask("101", "123456"), "not_found", /Invalid task ID/);
    await expectKind(provider.reinstall("101", { os: "windows-2022" }), "invalid", /HTTP 400: Invalid OS/);
  });

  test("a 500 is unavailable, and the next call goes through", async () => {
    standIn.failNextRequests(2);
    await expectKind(provider.getServer("101"), "unavailable", /HTTP 500$/);
    await expectKind(provider.listOperatingSystems("101"), "unavailable");
    assert.equal((await provider.getServer("101")).status, "Active");
  });

  test("no answer within timeoutMs is unavailable", async () => {
    const impatient = createTime4vpsProvider({ baseUrl: standIn.baseUrl, username, password, timeoutMs: 150 });
    standIn.delayNextRequests(1, 2000);
    const started = Date.now();
    await expectKind(impatient.getServer("101"), "unavailable", /no answer within 150 ms/);
    assert.ok(Date.now() - started < 1500, "gave up at the timeout");
  });

  test("a refused connection is unavailable", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const nowhere = createTime4vpsProvider({ baseUrl: `http://127.0.0.1:${port}/api/`, username, password, timeoutMs: 2000 });
    assertNoSecrets(await expectKind(nowhere.getServer("101"), "unavailable", /network error \(ECONNREFUSED\)/));
  });

  test("ids, OS codes and keys are checked before any request", async () => {
    for (const ref of ["", "0", "12a", "1/oses", "../1", " 101", "101 ", "-1", "1e3", "１０１", "1".repeat(20)]) {
      await expectKind(provider.getServer(ref), "invalid", /serverRef/);
      await expectKind(provider.listOperatingSystems(ref), "invalid", /serverRef/);
      await expectKind(provider.reinstall(ref, { os: "debian-12-x86_64" }), "invalid", /serverRef/);
      await expectKind(provider.getTask(ref, "1"), "invalid", /serverRef/);
      await expectKind(provider.getTask("101", ref), "invalid", /taskId/);
    }
    await expectKind(provider.reinstall("101", { os: "debian-12-x86_64", script: "echo hi" }), "invalid", /script/);
    await expectKind(provider.reinstall("101", { os: "../../etc" }), "invalid", /os/);
    const twoLines = await expectKind(provider.reinstall("101", { os: "debian-12-x86_64", sshKey: `${sshKey}\nssh-rsa AAAA` }), "invalid");
    assertNoSecrets(twoLines);
    assert.deepEqual(standIn.requests, []);
  });

  test("secrets never reach an error message, even when the provider quotes them", async () => {
    const encoded = Buffer.from(`${username}:${password}`).toString("base64");
    standIn.failNextRequests(1, { status: 422, body: { error: [`Bad key ${sshKey} for ${username}:${password} (${encoded})`] } });
    const echoed = await expectKind(provider.reinstall("101", { os: "debian-12-x86_64", sshKey }), "invalid");
    assert.match(echoed.message, /HTTP 422: Bad key \[redacted\]/);
    assertNoSecrets(echoed);

    standIn.failNextRequests(1, { status: 503, body: { error: [`backend said ${password}`] } });
    assertNoSecrets(await expectKind(provider.getServer("101"), "unavailable"));
  });
});

describe("ProviderError", () => {
  test("each kind is its own type, as Temporal names it, and only unavailable is retried", () => {
    const expected = {
      auth: "ProviderAuthError",
      not_found: "ProviderNotFoundError",
      invalid: "ProviderInvalidRequestError",
      unavailable: "ProviderUnavailableError",
    } as const;
    for (const [kind, type] of Object.entries(expected) as [ProviderErrorKind, string][]) {
      const error = new ProviderError("message", kind, { cause: new Error("root") });
      assert.ok(error instanceof ProviderError);
      assert.equal(error.name, type);
      assert.equal(error.constructor.name, type);
      assert.equal(ensureApplicationFailure(error).type, type);
      assert.equal(nonRetryableProviderErrors.includes(type), kind !== "unavailable");
      assert.equal(error.retryable, kind === "unavailable");
    }
    assert.equal(new ProviderAuthError("x").kind, "auth");
  });

  test("a base URL carrying credentials is refused", () => {
    assert.throws(
      () =>
        createTime4vpsProvider({
          baseUrl: `https://${username}:${password}@billing.time4vps.com/api/`,
          username,
          password,
          timeoutMs: 1000,
        }),
      (error: Error) => error instanceof ProviderError && error.kind === "invalid" && !error.message.includes(password),
    );
  });
});
