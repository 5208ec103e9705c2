import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ensureApplicationFailure } from "@temporalio/common";
import { eq } from "drizzle-orm";
import {
  nonRetryableProviderErrors,
  ProviderAuthError,
  ProviderError,
  type ProviderErrorKind,
  type VpsProvider,
} from "../activities/providers/provider.js";
import { createTime4vpsProvider } from "../activities/providers/time4vps.js";
import { startService } from "../app/service.js";
import { createOwnerToken } from "../core/inventory/owners.js";
import { loadConfig } from "../core/kernel/config.js";
import { isForeignKeyViolation } from "../core/kernel/db-errors.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { openDatabase } from "../db/client.js";
import { outboxEvents, providerAccounts, servers } from "../db/schema.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { ProviderAccountService, ProviderKind } from "../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { testCredentialsKey } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { ed25519KeyPair } from "./support/keys.js";
import { watchUntilEnd } from "./support/operations.js";
import { startPostgres } from "./support/postgres.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { startTime4vpsStandIn, type Time4vpsStandIn } from "./support/time4vps-standin.js";
import { activityScheduled } from "./support/workflow-history.js";

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
        { id: 103, oses: ["ubuntu-22.04-x86_64"], os: "ubuntu-22.04-x86_64", ip: "203.0.113.12", additionalIps: ["203.0.113.112"] },
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
    assert.deepEqual(await provider.getServer("101"), {
      id: "101",
      status: "Active",
      ip: "203.0.113.10",
      addresses: ["203.0.113.10"],
      os: "debian-12-x86_64",
    });
    assert.deepEqual(
      await provider.getServer("102"),
      { id: "102", status: "Active", ip: "203.0.113.11", addresses: ["203.0.113.11"], os: undefined },
      "no OS yet",
    );
    assert.deepEqual((await provider.getServer("103")).addresses, ["203.0.113.12", "203.0.113.112"], "additional_ip too");
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

describe("provider accounts belong to owners: reinstall through the API and real workflows", { timeout: 10 * 60_000 }, () => {
  const alicePass = "alice-T4V-password-0001";
  const bobPass = "bob-T4V-password-0002";
  const aliceUser = "alice@t4v.example";
  const bobUser = "bob@t4v.example";
  const secrets = [alicePass, bobPass];
  const logs: string[] = [];
  const writes = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
  let standIn: Time4vpsStandIn;
  let harness: ProvisioningHarness;
  type Clients = ReturnType<ProvisioningHarness["api"]["clients"]>;
  let alice: Clients;
  let bob: Clients;
  let aliceAccount: string;
  let bobAccount: string;
  let n = 0;

  const key = () => ({ method: { case: "privateKey" as const, value: { key: ed25519KeyPair().privateKey } } });
  const clusterOf = async (clients: Clients) => (await clients.clusters.createCluster({ name: `c-${++n}` })).cluster!.id;
  const serverOf = async (clients: Clients, fields: Record<string, unknown>) =>
    (await clients.servers.createServer({ clusterId: await clusterOf(clients), name: `s-${++n}`, credential: key(), ...fields } as never))
      .server!;
  const account = async (clients: Clients, username: string, password: string, name = `acct-${++n}`) =>
    (await clients.providerAccounts.createProviderAccount({ name, kind: ProviderKind.TIME4VPS, credentials: { username, password } }))
      .providerAccount!;
  const rebuildsOf = (vps: number) => standIn.requests.filter((r) => r.method === "POST" && r.path === `server/${vps}/reinstall`);

  before(async () => {
    const capture =
      (into: string[], write: typeof process.stdout.write) =>
      (chunk: unknown, ...rest: unknown[]): boolean => {
        into.push(String(chunk));
        return (write as (c: unknown, ...r: unknown[]) => boolean)(chunk, ...rest);
      };
    process.stdout.write = capture(logs, writes.out) as typeof process.stdout.write;
    process.stderr.write = capture(logs, writes.err) as typeof process.stderr.write;
    standIn = await startTime4vpsStandIn({
      username: aliceUser,
      password: alicePass,
      otherAccounts: [{ username: bobUser, password: bobPass }],
      servers: [
        { id: 201, oses: ["debian-12"], os: "debian-11", ip: "203.0.113.21" },
        { id: 202, oses: ["debian-12"], os: "debian-11", ip: "203.0.113.22" },
        { id: 203, oses: ["debian-12"], os: "debian-11", ip: "203.0.113.23" },
        { id: 204, oses: ["debian-12"], os: "debian-11", ip: "203.0.113.24" },
        { id: 301, oses: ["debian-12"], os: "debian-11", ip: "203.0.113.31", account: bobUser },
      ],
      taskPhase: { ms: 60_000 },
    });
    harness = await startProvisioningHarness({ providers: { time4vps: { baseUrl: standIn.baseUrl, timeoutMs: 5000 } } });
    alice = harness.api.clients((await harness.api.newOwner()).token);
    bob = harness.api.clients((await harness.api.newOwner()).token);
    aliceAccount = (await account(alice, aliceUser, alicePass, "alice-t4v")).id;
    bobAccount = (await account(bob, bobUser, bobPass, "bob-t4v")).id;
  });

  after(async () => {
    process.stdout.write = writes.out;
    process.stderr.write = writes.err;
    await harness?.close();
    await standIn?.close();
  });

  test("account CRUD: credentials are write-only, lists page, another owner's id is NotFound", async () => {
    const created = await alice.providerAccounts.createProviderAccount({
      name: "crud",
      kind: ProviderKind.TIME4VPS,
      credentials: { username: aliceUser, password: alicePass },
    });
    const id = created.providerAccount!.id;
    assert.equal(created.providerAccount?.name, "crud");
    assert.equal(created.providerAccount?.kind, ProviderKind.TIME4VPS);
    const got = await alice.providerAccounts.getProviderAccount({ id });
    const renamed = await alice.providerAccounts.updateProviderAccount({
      id,
      name: "crud-2",
      credentials: { username: aliceUser, password: "n3w" },
    });
    assert.equal(renamed.providerAccount?.name, "crud-2");
    for (const answer of [created, got, renamed, await alice.providerAccounts.listProviderAccounts({})]) {
      const text = JSON.stringify(answer, (_k, v) => (typeof v === "bigint" ? String(v) : v));
      for (const secret of [alicePass, aliceUser, "n3w"]) assert.ok(!text.includes(secret), "no credential in any answer");
    }
    const [row] = await harness.api.database.db.select().from(providerAccounts).where(eq(providerAccounts.id, id));
    assert.ok(row && !row.envelope.includes("n3w") && row.envelope.startsWith("v1."), "stored as an envelope");

    await expectCode(
      alice.providerAccounts.createProviderAccount({ name: "no-creds", kind: ProviderKind.TIME4VPS }),
      Code.InvalidArgument,
      /^credentials/,
    );
    await expectCode(
      alice.providerAccounts.createProviderAccount({ name: "no-kind", credentials: { username: "u", password: "p" } }),
      Code.InvalidArgument,
      /^kind/,
    );
    await expectCode(
      alice.providerAccounts.createProviderAccount({
        name: "colon",
        kind: ProviderKind.TIME4VPS,
        credentials: { username: "a:b", password: "p" },
      }),
      Code.InvalidArgument,
      /^credentials\.username/,
    );
    await expectCode(
      alice.providerAccounts.createProviderAccount({
        name: "crud-2",
        kind: ProviderKind.TIME4VPS,
        credentials: { username: "u", password: "p" },
      }),
      Code.AlreadyExists,
      /^name/,
    );

    await expectCode(bob.providerAccounts.getProviderAccount({ id }), Code.NotFound);
    await expectCode(bob.providerAccounts.updateProviderAccount({ id, name: "mine" }), Code.NotFound);
    await expectCode(bob.providerAccounts.deleteProviderAccount({ id }), Code.NotFound);
    assert.deepEqual(
      (await bob.providerAccounts.listProviderAccounts({})).providerAccounts.map((a) => a.id),
      [bobAccount],
    );

    const first = await alice.providerAccounts.listProviderAccounts({ pageSize: 1 });
    assert.equal(first.providerAccounts.length, 1);
    const rest = await alice.providerAccounts.listProviderAccounts({ pageSize: 500, pageToken: first.nextPageToken });
    assert.deepEqual([...first.providerAccounts, ...rest.providerAccounts].map((a) => a.id).sort(), [aliceAccount, id].sort());
    assert.equal(rest.nextPageToken, "");

    const server = await serverOf(alice, { host: "203.0.113.200", providerAccountId: id, providerServerId: "9999" });
    assert.equal((await alice.providerAccounts.getProviderAccount({ id })).providerAccount?.serverCount, 1);
    await expectCode(alice.providerAccounts.deleteProviderAccount({ id }), Code.FailedPrecondition, /named by 1 server/);
    await alice.servers.updateServer({ id: server.id, providerAccountId: "" });
    await alice.providerAccounts.deleteProviderAccount({ id });
    await expectCode(alice.providerAccounts.getProviderAccount({ id }), Code.NotFound);
  });

  test("a server names only its own owner's accounts, and provider is the account's kind", async () => {
    await expectCode(
      serverOf(bob, { host: "203.0.113.21", providerAccountId: aliceAccount, providerServerId: "201" }),
      Code.NotFound,
      /provider account/,
    );
    const own = await serverOf(bob, { host: "203.0.113.31", providerAccountId: bobAccount, providerServerId: "301" });
    assert.equal(own.provider, "time4vps");
    assert.equal(own.providerAccountId, bobAccount);
    await expectCode(bob.servers.updateServer({ id: own.id, providerAccountId: aliceAccount }), Code.NotFound, /provider account/);
    await expectCode(serverOf(bob, { host: "203.0.113.99", providerAccountId: "nope" }), Code.InvalidArgument, /^provider_account_id/);
    // The API before accounts: provider alone names the owner's only account of that kind.
    const legacy = await serverOf(bob, { host: "203.0.113.98", provider: "time4vps", providerServerId: "398" });
    assert.equal(legacy.providerAccountId, bobAccount);
    // The database refuses it too: the foreign key includes the owner.
    const [bobServer] = await harness.api.database.db.select().from(servers).where(eq(servers.id, own.id));
    await assert.rejects(
      harness.api.database.db.update(servers).set({ providerAccountId: aliceAccount }).where(eq(servers.id, own.id)),
      (error: unknown) => isForeignKeyViolation(error),
    );
    assert.equal(bobServer?.providerAccountId, bobAccount);
  });

  test("a provider_server_id is bound to one server per account", async () => {
    const first = await serverOf(alice, { host: "203.0.113.51", providerAccountId: aliceAccount, providerServerId: "501" });
    await expectCode(
      serverOf(alice, { host: "203.0.113.52", providerAccountId: aliceAccount, providerServerId: "501" }),
      Code.AlreadyExists,
      /^provider_server_id/,
    );
    const second = await serverOf(alice, { host: "203.0.113.52", providerAccountId: aliceAccount, providerServerId: "502" });
    await expectCode(alice.servers.updateServer({ id: second.id, providerServerId: "501" }), Code.AlreadyExists, /^provider_server_id/);
    // Another account's VPS 501 is another machine.
    await serverOf(bob, { host: "203.0.113.53", providerAccountId: bobAccount, providerServerId: "501" });
    await alice.servers.deleteServer({ id: first.id });
    await alice.servers.updateServer({ id: second.id, providerServerId: "501" });
  });

  test("owner B cannot rebuild owner A's VPS, through its own account, A's account id or the old provider field", async () => {
    const aliceServer = await serverOf(alice, { host: "203.0.113.21", providerAccountId: aliceAccount, providerServerId: "201" });
    // Through B's own account: Time4VPS does not show B another account's VPS.
    const viaOwnAccount = await serverOf(bob, { host: "203.0.113.21", providerAccountId: bobAccount, providerServerId: "201" });
    await expectCode(
      bob.servers.reinstallServer({ id: viaOwnAccount.id, os: "debian-12" }),
      Code.FailedPrecondition,
      /^provider_server_id: VPS 201 at host 203\.0\.113\.21 could not be confirmed with the server's provider account/,
    );
    // Through A's account id: it is not B's to name.
    const viaAliceAccount = await serverOf(bob, { host: "203.0.113.21", sshPort: 2222, providerServerId: "201" });
    await expectCode(bob.servers.updateServer({ id: viaAliceAccount.id, providerAccountId: aliceAccount }), Code.NotFound);
    // Through the field that once meant "the service's account": an owner without an account has none.
    const carol = harness.api.clients((await harness.api.newOwner()).token);
    const legacy = await serverOf(carol, { host: "203.0.113.21", provider: "time4vps", providerServerId: "201" });
    assert.equal(legacy.providerAccountId, "");
    await expectCode(
      carol.servers.reinstallServer({ id: legacy.id }),
      Code.FailedPrecondition,
      /^provider_account_id: the server names no provider account/,
    );

    for (const [clients, id] of [
      [bob, viaOwnAccount.id],
      [bob, viaAliceAccount.id],
      [carol, legacy.id],
    ] as const) {
      assert.deepEqual((await clients.operations.listOperations({ serverId: id })).operations, [], "no workflow was started");
    }
    assert.deepEqual(rebuildsOf(201), [], "A's VPS was never rebuilt");
    assert.ok(
      standIn.requests.filter((r) => r.path.startsWith("server/201")).every((r) => r.user === bobUser),
      "only B's own credentials were ever used for B's servers",
    );

    // A rebuilds its own VPS through its own account (and its own key goes to it).
    const started = await alice.servers.reinstallServer({ id: aliceServer.id, os: "debian-12" });
    await activityScheduled(harness.client, started.operation!.workflowId, "reinstallTaskState");
    assert.equal(rebuildsOf(201).length, 1);
    assert.equal(rebuildsOf(201)[0]?.user, aliceUser);
    await alice.operations.cancelOperation({ id: started.operation!.id });
    assert.equal((await watchUntilEnd(alice.operations, started.operation!.id)).status, OperationStatus.CANCELLED);
  });

  test("a host that is not the VPS's address at the provider is refused before anything starts", async () => {
    const elsewhere = await serverOf(alice, { host: "203.0.113.99", providerAccountId: aliceAccount, providerServerId: "202" });
    await expectCode(
      alice.servers.reinstallServer({ id: elsewhere.id }),
      Code.FailedPrecondition,
      /^provider_server_id: VPS 202 at host 203\.0\.113\.99 could not be confirmed with the server's provider account/,
    );
    await alice.servers.updateServer({ id: elsewhere.id, host: "no-such-host.invalid" });
    await expectCode(
      alice.servers.reinstallServer({ id: elsewhere.id }),
      Code.FailedPrecondition,
      /^host: host no-such-host\.invalid does not resolve/,
    );
    assert.deepEqual(rebuildsOf(202), []);
    assert.deepEqual((await alice.operations.listOperations({ serverId: elsewhere.id })).operations, []);
  });

  test("a host changed after the API's check: the activity checks again and refuses before the rebuild call", async () => {
    const server = await serverOf(alice, { host: "203.0.113.23", providerAccountId: aliceAccount, providerServerId: "203" });
    await harness.stopWorker();
    let operationId: string;
    try {
      const started = await alice.servers.reinstallServer({ id: server.id, os: "debian-12" });
      operationId = started.operation!.id;
      // The API refuses the change while the reinstall runs; what the host resolves to can still change
      // (a DNS name), or a row be edited by hand: the activity checks again right before the call.
      await expectCode(alice.servers.updateServer({ id: server.id, host: "203.0.113.77" }), Code.FailedPrecondition, /cannot change while/);
      await harness.api.database.db.update(servers).set({ host: "203.0.113.77" }).where(eq(servers.id, server.id));
    } finally {
      await harness.startWorker();
    }
    // Until the operation ends or a rebuild is requested, whichever comes first.
    let op = (await alice.operations.getOperation({ id: operationId })).operation!;
    for (let i = 0; i < 600 && op.status === OperationStatus.RUNNING && rebuildsOf(203).length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      op = (await alice.operations.getOperation({ id: operationId })).operation!;
    }
    assert.deepEqual(rebuildsOf(203), [], "no rebuild was requested");
    assert.equal(op.status, OperationStatus.FAILED);
    assert.match(op.error, /VPS 203 at host 203\.0\.113\.77 could not be confirmed/);
  });

  test("the reinstall check is no password oracle: a wrong password, a VPS the account has not and a wrong host answer alike, without the provider's data; checks are budgeted per owner", async () => {
    const mallory = harness.api.clients((await harness.api.newOwner()).token);
    const guessed = await account(mallory, bobUser, "guess-1");
    const right = await account(mallory, bobUser, bobPass);
    const cases = [
      ["a wrong password", { providerAccountId: guessed.id, providerServerId: "301" }],
      ["the right password, a VPS id the account has not", { providerAccountId: right.id, providerServerId: "399" }],
      ["the right password and VPS, a host that is not the VPS's", { providerAccountId: right.id, providerServerId: "301" }],
    ] as const;
    const answers: string[] = [];
    for (const [i, [what, binding]] of cases.entries()) {
      const server = await serverOf(mallory, { host: "203.0.113.98", sshPort: 2200 + i, ...binding });
      const refused = await expectCode(mallory.servers.reinstallServer({ id: server.id }), Code.FailedPrecondition);
      assert.ok(!refused.rawMessage.includes("203.0.113.31"), `${what}: the VPS's address at the provider is not told`);
      answers.push(refused.rawMessage.replace(/VPS \d+/, "VPS <id>"));
    }
    assert.equal(new Set(answers).size, 1, `one answer whatever was wrong: ${JSON.stringify(answers)}`);
    assert.deepEqual(rebuildsOf(301), []);
    // The provider is asked at most PROVIDER_CHECK_BURST (5) times at once per owner; then ResourceExhausted naming the limit.
    const probe = await serverOf(mallory, { host: "203.0.113.98", sshPort: 2299, providerAccountId: guessed.id, providerServerId: "302" });
    const asked = () => standIn.requests.filter((r) => r.user === bobUser).length;
    const before = asked();
    let refusedAt = -1;
    for (let i = 0; i < 10 && refusedAt < 0; i++) {
      const error = await mallory.servers.reinstallServer({ id: probe.id }).then(
        () => assert.fail("a check with a wrong password passed"),
        (e: unknown) => ConnectError.from(e),
      );
      if (error.code === Code.ResourceExhausted) {
        assert.match(error.rawMessage, /provider checks.*PROVIDER_CHECK_BURST, PROVIDER_CHECKS_PER_MINUTE/);
        refusedAt = i;
      }
    }
    assert.equal(refusedAt, 2, "3 checks above, 2 more, then the budget of 5 is spent");
    assert.equal(asked() - before, 2, "the refused check did not reach the provider");
  });

  test("a reinstall the rebuilt machine could not be logged into is refused up front", async () => {
    const byPassword = await serverOf(alice, {
      host: "203.0.113.24",
      providerAccountId: aliceAccount,
      providerServerId: "204",
      credential: { method: { case: "password", value: "root-password" } },
    });
    const askedAbout204 = () => standIn.requests.filter((r) => r.path.startsWith("server/204")).length;
    await expectCode(alice.servers.reinstallServer({ id: byPassword.id }), Code.FailedPrecondition, /^credential: .*new random password/);
    await alice.servers.updateServer({ id: byPassword.id, credential: key(), sshUser: "deploy" });
    await expectCode(
      alice.servers.reinstallServer({ id: byPassword.id }),
      Code.FailedPrecondition,
      /^ssh_user: a rebuilt server has no user "deploy"/,
    );
    assert.equal(askedAbout204(), 0, "refused before the provider was asked");
    assert.deepEqual((await alice.operations.listOperations({ serverId: byPassword.id })).operations, []);
  });

  test("TIME4VPS_* become the admin owner's account at start, usable by the admin only", async () => {
    const pg = await startPostgres();
    const dataDir = mkdtempSync(join(tmpdir(), "axion-t4v-env-"));
    const adminToken = "t4v-env-admin-token-000001";
    const env = {
      DATABASE_URL: pg.url,
      AXION_DATA_DIR: dataDir,
      TEMPORAL_ADDRESS: harness.dev.address,
      TEMPORAL_NAMESPACE: harness.dev.spec.namespace,
      TEMPORAL_TASK_QUEUE: "t4v-env-no-worker",
      PORT: "0",
      CREDENTIALS_KEY: testCredentialsKey,
      AXION_ADMIN_TOKEN: adminToken,
      TIME4VPS_API_URL: standIn.baseUrl,
      TIME4VPS_USERNAME: aliceUser,
      TIME4VPS_PASSWORD: alicePass,
    };
    const database = await openDatabase({ databaseUrl: pg.url, dataDir });
    let service = await startService(loadConfig(env), "api");
    try {
      const connect = (token: string) => {
        const transport = createConnectTransport({
          baseUrl: `http://127.0.0.1:${service.apiPort}`,
          httpVersion: "1.1",
          interceptors: [
            (next) => (req) => {
              req.header.set("authorization", `Bearer ${token}`);
              return next(req);
            },
          ],
        });
        return {
          clusters: createClient(ClusterService, transport),
          servers: createClient(ServerService, transport),
          accounts: createClient(ProviderAccountService, transport),
        };
      };
      const admin = connect(adminToken);
      const listed = (await admin.accounts.listProviderAccounts({})).providerAccounts;
      assert.deepEqual(
        listed.map((a) => [a.name, a.kind]),
        [["time4vps-env", ProviderKind.TIME4VPS]],
      );
      const envAccount = listed[0]!.id;
      const clusterId = (await admin.clusters.createCluster({ name: "env" })).cluster!.id;
      const adminServer = (
        await admin.servers.createServer({
          clusterId,
          name: "env-1",
          host: "203.0.113.21",
          credential: key(),
          provider: "time4vps",
          providerServerId: "202",
        })
      ).server!;
      assert.equal(adminServer.providerAccountId, envAccount, "provider alone names the admin's only account");
      await expectCode(
        admin.servers.reinstallServer({ id: adminServer.id }),
        Code.FailedPrecondition,
        /VPS 202 at host .* could not be confirmed/,
      );
      assert.equal(standIn.requests.at(-1)?.user, aliceUser);

      await createOwnerToken(database.db, "mallory", "t4v-env-mallory-token-01");
      const mallory = connect("t4v-env-mallory-token-01");
      assert.deepEqual((await mallory.accounts.listProviderAccounts({})).providerAccounts, []);
      await expectCode(mallory.accounts.getProviderAccount({ id: envAccount }), Code.NotFound);
      const malloryCluster = (await mallory.clusters.createCluster({ name: "m" })).cluster!.id;
      await expectCode(
        mallory.servers.createServer({
          clusterId: malloryCluster,
          name: "m-1",
          host: "203.0.113.21",
          credential: key(),
          providerAccountId: envAccount,
          providerServerId: "201",
        }),
        Code.NotFound,
        /provider account/,
      );
      const legacy = (
        await mallory.servers.createServer({
          clusterId: malloryCluster,
          name: "m-2",
          host: "203.0.113.21",
          credential: key(),
          provider: "time4vps",
          providerServerId: "201",
        })
      ).server!;
      assert.equal(legacy.providerAccountId, "", "the service-wide account is not anybody's default");
      await expectCode(mallory.servers.reinstallServer({ id: legacy.id }), Code.FailedPrecondition, /names no provider account/);

      // A server registered before accounts existed ("provider" alone, as the upgrade leaves it) is adopted at the next start.
      await database.db.update(servers).set({ providerAccountId: null }).where(eq(servers.id, adminServer.id));
      // A restart with other credentials updates the same account.
      await service.stop();
      service = await startService(loadConfig({ ...env, TIME4VPS_PASSWORD: "rotated-T4V-password" }), "api");
      const [row] = await database.db.select().from(providerAccounts).where(eq(providerAccounts.id, envAccount));
      const cipher = createCredentialsCipher(testCredentialsKey);
      assert.equal(JSON.parse(cipher.decrypt(row!.envelope, envAccount)).password, "rotated-T4V-password");
      assert.equal((await connect(adminToken).accounts.listProviderAccounts({})).providerAccounts.length, 1);
      assert.equal((await connect(adminToken).servers.getServer({ id: adminServer.id })).server?.providerAccountId, envAccount);
      const [mallorys] = await database.db.select().from(servers).where(eq(servers.id, legacy.id));
      assert.equal(mallorys?.providerAccountId, null, "another owner's server is never adopted");
    } finally {
      await service.stop();
      await database.close();
      await pg.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("provider credentials never reach logs, workflow histories or events", async () => {
    let histories = "";
    for await (const e of harness.client.workflow.list({ query: `WorkflowType = "reinstallWorkflow"` })) {
      histories += JSON.stringify(await harness.client.workflow.getHandle(e.workflowId, e.runId).fetchHistory(), (_k, v) =>
        typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("utf8") : v,
      );
    }
    assert.match(histories, /reinstallWorkflow/);
    const events = JSON.stringify(await harness.api.database.db.select().from(outboxEvents));
    const logText = logs.join("");
    for (const secret of [...secrets, Buffer.from(`${aliceUser}:${alicePass}`).toString("base64")]) {
      assert.ok(!histories.includes(secret), "not in any workflow history");
      assert.ok(!events.includes(secret), "not in any event");
      assert.ok(!logText.includes(secret), "not in any log line");
    }
  });
});
