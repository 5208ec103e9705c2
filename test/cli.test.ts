import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { sql } from "drizzle-orm";
import { BUILT_IN_ALERT_DEFAULTS } from "../core/alerts/alert-rules.js";
import { startAlerting } from "../core/alerts/alerting.js";
import { setServerStatus } from "../core/inventory/server-status.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { defaultNetworkPolicy } from "../core/security/network-policy.js";
import { testCredentialsKey } from "./support/api.js";
import { holdCommand } from "./support/host-gate.js";
import { ed25519KeyPair } from "./support/keys.js";
import { freePort } from "./support/ports.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { buildImage, DOCKER_PREINSTALLED, downHosts, type Fleet, hostExec, upHosts } from "./support/testhosts.js";
import { startTime4vpsStandIn, type Time4vpsStandIn } from "./support/time4vps-standin.js";

/**
 * The `axion` command as an operator runs it: a subprocess (the package's bin shim) against a real API with a
 * real worker and Temporal, on real test hosts; live progress checked on a real terminal (tmux).
 */
const prefix = "pcli";
const bin = join(process.cwd(), "cli", "bin", "axion.mjs");
const tmux = ["-L", `axion-cli-test-${process.pid}`];
let harness: ProvisioningHarness;
let fleet: Fleet;
let standIn: Time4vpsStandIn;
let home: string;
let keyFile: string;
let token: string;
const names = ["web-1", "web-2", "web-3"];
/** The Time4VPS account's password as first registered, and as rotated on the prompt: the stand-in knows only the second. */
const providerPasswords = { first: "t4v-first-password", rotated: "t4v-rotated-password" };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `axion …` (asynchronously: the API answering it lives in this process). */
function axion(args: string[], options: { env?: Record<string, string | undefined>; input?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [bin, ...args],
      {
        cwd: tmpdir(),
        env: {
          ...process.env,
          XDG_CONFIG_HOME: home,
          AXION_API: undefined,
          AXION_TOKEN: undefined,
          COLUMNS: undefined,
          NO_COLOR: "1",
          ...options.env,
        },
        maxBuffer: 16 << 20,
      },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(options.input ?? "");
  });
}

async function ok(args: string[], options?: Parameters<typeof axion>[1]): Promise<string> {
  const r = await axion(args, options);
  assert.equal(r.code, 0, `axion ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const json = async (args: string[], options?: Parameters<typeof axion>[1]) => JSON.parse(await ok([...args, "-o", "json"], options));

/** The one-line error and the exit code. */
async function fails(args: string[], code: number, pattern: RegExp, options?: Parameters<typeof axion>[1]): Promise<void> {
  const r = await axion(args, options);
  assert.equal(r.code, code, `axion ${args.join(" ")}: exit ${r.code} (${r.stderr})`);
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, pattern);
}

const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** Starts `axion …` in a tmux window (a real terminal, 120×40 unless told, tmux's defaults: scroll-on-clear on); the exit code is printed after it. */
function inTerminal(session: string, args: string[], configHome = home, size = { columns: 120, rows: 40 }): void {
  const command = [
    `XDG_CONFIG_HOME=${shellQuote(configHome)}`,
    "TERM=xterm-256color",
    shellQuote(process.execPath),
    shellQuote(bin),
    ...args.map(shellQuote),
  ].join(" ");
  execFileSync("tmux", [
    ...tmux,
    "new-session",
    "-d",
    "-s",
    session,
    "-x",
    String(size.columns),
    "-y",
    String(size.rows),
    `${command}; echo "EXIT=$?"; sleep 3600`,
  ]);
}

const operatorTerminal = { columns: 80, rows: 24 };

/** Rows pushed into the scrollback (what an operator scrolls back through), and the scrollback with the screen. */
const scrollback = (session: string) => ({
  rows: Number(execFileSync("tmux", [...tmux, "display-message", "-p", "-t", session, "#{history_size}"], { encoding: "utf8" }).trim()),
  text: execFileSync("tmux", [...tmux, "capture-pane", "-p", "-S", "-", "-t", session], { encoding: "utf8" }),
});

const spinnerFrames = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;

/** A watch without a terminal: plain lines, one per step change, its fields at the same columns on every line. */
function assertLoggedSteps(text: string): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: an escape sequence is what must be absent
  assert.ok(!/\u001b/.test(text) && !spinnerFrames.test(text), `no escape sequence, no spinner: ${JSON.stringify(text)}`);
  const steps = text.split("\n").filter((l) => /^ {2}[✓=✗…?-] /.test(l));
  assert.ok(steps.length >= 2, text);
  const statusColumn = steps.map((l) => l.search(/ (done|unchanged|skipped|failed|running)\b/));
  assert.equal(new Set(statusColumn).size, 1, `the status at one column on every line:\n${text}`);
  const ended = steps.filter((l) => !/ running\b/.test(l)).map((l) => l.slice(4).split(" ")[0]);
  assert.equal(new Set(ended).size, ended.length, `a step's end printed once:\n${text}`);
}

const screen = (session: string) => execFileSync("tmux", [...tmux, "capture-pane", "-p", "-J", "-t", session], { encoding: "utf8" });

/** Types `text` on the terminal, then Enter. */
function typeLine(session: string, text: string): void {
  execFileSync("tmux", [...tmux, "send-keys", "-t", session, "-l", text]);
  execFileSync("tmux", [...tmux, "send-keys", "-t", session, "Enter"]);
}

async function screenUntil(session: string, pattern: RegExp, withinMs = 900_000): Promise<string> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const text = screen(session);
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) assert.fail(`terminal never showed ${pattern}:\n${text}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  execFileSync("bash", ["scripts/build-agent.sh"], { stdio: ["ignore", "ignore", "inherit"], timeout: 10 * 60_000 });
  buildImage();
  downHosts(prefix);
  // Docker preinstalled: the CLI is under test here, not the dpkg run, which takes minutes on a busy machine.
  fleet = upHosts(prefix, 3, "fresh", DOCKER_PREINSTALLED);
  // web-3 is VPS 101 of the stand-in's account (the API's reinstall check matches its address).
  standIn = await startTime4vpsStandIn({
    username: "axion-test",
    password: providerPasswords.rotated,
    servers: [{ id: 101, oses: ["debian-12", "ubuntu-24.04"], os: "debian-11", ip: fleet.hosts[2]?.ip }],
    // The rebuild task is done by the workflow's first poll (the next comes 15 s later).
    taskPhase: { ms: 1 },
  });
  harness = await startProvisioningHarness({
    providers: { time4vps: { baseUrl: standIn.baseUrl, timeoutMs: 5000 } },
    orchestratorPublicKey: ed25519KeyPair().publicKey.trim(),
    sshConnectTimeoutMs: 4000,
    agent: { binaryDir: join(process.cwd(), "agent", "dist"), gateway: fleet.gateway, heartbeatIntervalSeconds: 1 },
  });
  token = (await harness.api.newOwner("cli-operator")).token;
  home = mkdtempSync(join(tmpdir(), "axion-cli-"));
  keyFile = join(home, "id_ed25519");
  writeFileSync(keyFile, fleet.privateKey, { mode: 0o600 });
});

after(async () => {
  try {
    execFileSync("tmux", [...tmux, "kill-server"], { stdio: "ignore" });
  } catch {
    // no session left
  }
  await harness?.close();
  await standIn?.close();
  downHosts(prefix);
  if (home) rmSync(home, { recursive: true, force: true });
});

test("a secret on the command line is refused with exit 2 before anything is sent", async () => {
  await fails(["login", "--api", harness.api.baseUrl, "--token", token], 2, /--token is refused: .*--token-stdin/);
  await fails(["login", "--api", harness.api.baseUrl, `--token=${token}`], 2, /--token is refused/);
  await fails(
    ["servers", "add", "x", "--cluster", "c", "--host", "h", "--password", "hunter2"],
    2,
    /--password is refused: .*--password-stdin/,
  );
  await fails(
    ["servers", "add", "x", "--cluster", "c", "--host", "h", "--key-file", "k", "--passphrase=pw"],
    2,
    /--passphrase is refused: .*AXION_KEY_PASSPHRASE/,
  );
  // With a working API and token: had any of these been sent, the account would have been created (exit 0).
  const reachable = { env: { AXION_API: harness.api.baseUrl, AXION_TOKEN: token } };
  const create = ["providers", "create", "leak", "--username", "ops@example.com"];
  await fails([...create, "--password", "hunter2"], 2, /--password is refused: .*AXION_PROVIDER_PASSWORD/, reachable);
  await fails([...create, "--password-stdin=hunter2"], 2, /a value for --password-stdin is refused: .*pipe the secret in/, reachable);
  await fails(["providers", "create", "leak", "--username=ops@example.com:hunter2"], 2, /--username user:password is refused/, reachable);
  await fails(
    ["providers", "create", "leak", "--username", "ops@example.com:hunter2"],
    2,
    /--username user:password is refused/,
    reachable,
  );
  await fails(["servers", "add", "x", "--cluster", "c", "--host", "h", "--password-stdin=hunter2"], 2, /--password-stdin is refused/);
  const listed = await axion(["providers", "list", "-o", "json"], reachable);
  assert.deepEqual(JSON.parse(listed.stdout).provider_accounts, [], "nothing was created");
});

test("login checks the token against the API and stores it owner-only; whoami names the token", async () => {
  await fails(["login", "--api", harness.api.baseUrl, "--token-stdin"], 3, /not logged in or the token is no longer valid/, {
    input: "axn_wrong\n",
  });
  await fails(["login", "--api", harness.api.baseUrl, "--token-stdin"], 2, /stdin was empty/);
  const out = await ok(["login", "--api", harness.api.baseUrl, "--token-stdin"], { input: `${token}\n` });
  assert.match(out, /Logged in to http:\/\/127\.0\.0\.1:\d+/);
  assert.ok(!out.includes(token), "the token is not echoed");
  const file = join(home, "axion", "config.json");
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(JSON.parse(readFileSync(file, "utf8")).token, token);
  const me = await json(["whoami"]);
  assert.equal(me.api, harness.api.baseUrl);
  assert.equal(me.token.current, true);
  assert.equal(me.token.prefix, token.slice(0, me.token.prefix.length));
});

test("login on a terminal asks for the token with echo off, stores it owner-only, and whoami then works", async () => {
  const fresh = mkdtempSync(join(tmpdir(), "axion-cli-tty-"));
  try {
    inTerminal("login", ["login", "--api", harness.api.baseUrl], fresh);
    await screenUntil("login", /^Token:/m);
    typeLine("login", token);
    const done = await screenUntil("login", /EXIT=\d+/);
    assert.match(done, /EXIT=0/, done);
    assert.match(done, /Logged in to http:\/\/127\.0\.0\.1:\d+ with token/);
    assert.ok(!done.includes(token) && !done.includes(token.slice(-12)), `the token is not echoed:\n${done}`);
    const file = join(fresh, "axion", "config.json");
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(JSON.parse(readFileSync(file, "utf8")).token, token);
    const me = await json(["whoami"], { env: { XDG_CONFIG_HOME: fresh } });
    assert.equal(me.api, harness.api.baseUrl);
    assert.equal(me.token.current, true);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});

test("exit codes: 4 when the API cannot be reached, 3 for a refused token or a missing name, 2 for usage errors", async () => {
  const closed = `http://127.0.0.1:${await freePort()}`;
  await fails(["clusters", "list"], 4, new RegExp(`cannot reach the API at ${closed}`), { env: { AXION_API: closed } });
  await fails(["whoami"], 3, /run axion login/, { env: { AXION_TOKEN: "axn_not-a-token" } });
  await fails(["clusters", "get", "no-such-cluster"], 3, /no cluster named or with id "no-such-cluster"/);
  await fails(["clusters", "frobnicate"], 2, /Unknown argument: frobnicate/);
  await fails(["clusters", "create", "x", "--label", "novalue"], 2, /--label must be key=value/);
  await fails(["clusters", "create", "Bad Name!"], 2, /InvalidArgument: .*name/);
});

test("clusters: create, list, get, update and delete by name, -o json with snake_case fields", async () => {
  const created = await json(["clusters", "create", "prod", "--description", "production", "--label", "env=prod"]);
  assert.equal(created.cluster.name, "prod");
  assert.deepEqual(created.cluster.labels, { env: "prod" });
  assert.equal(created.cluster.server_count, 0);
  await ok(["clusters", "create", "scratch"]);
  const table = await ok(["clusters", "list"]);
  assert.match(table, /^NAME\s+ID\s+SERVERS\s+LABELS\s+DESCRIPTION\n/);
  assert.match(table, /\nprod\s+[0-9a-f-]{36}\s+0\s+env=prod\s+production\n/);
  assert.equal((await json(["clusters", "get", created.cluster.id])).cluster.name, "prod", "an id works as well as a name");
  const updated = await json(["clusters", "update", "scratch", "--name", "staging", "--label", "env=staging"]);
  assert.equal(updated.cluster.name, "staging");
  assert.match(await ok(["clusters", "delete", "staging"]), /Cluster staging deleted/);
  assert.deepEqual(
    (await json(["clusters", "list"])).clusters.map((c: { name: string }) => c.name),
    ["prod"],
  );
});

/** Runs `axion …`, expecting exit 0 and none of the provider passwords in anything it printed. */
async function withoutSecrets(args: string[], options?: Parameters<typeof axion>[1]): Promise<string> {
  const r = await axion(args, options);
  assert.equal(r.code, 0, `axion ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  for (const secret of [...Object.values(providerPasswords), "spare-secret"]) {
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `axion ${args.join(" ")} printed a password`);
  }
  return r.stdout;
}

test("providers: create (password from stdin, AXION_PROVIDER_PASSWORD), list, get, update (password on an echo-off prompt), delete by name; no password ever shown", async () => {
  const created = JSON.parse(
    await withoutSecrets(["providers", "create", "t4v", "--username", "axion-test", "--password-stdin", "-o", "json"], {
      input: `${providerPasswords.first}\n`,
    }),
  );
  assert.deepEqual(Object.keys(created.provider_account), ["id", "name", "kind", "server_count", "create_time", "update_time"]);
  assert.equal(created.provider_account.name, "t4v");
  assert.equal(created.provider_account.kind, "PROVIDER_KIND_TIME4VPS");
  assert.equal(created.provider_account.server_count, 0);
  await fails(["providers", "create", "spare", "--username", "ops@example.com"], 2, /no terminal to ask on: .*AXION_PROVIDER_PASSWORD/);
  const spare = await withoutSecrets(["providers", "create", "spare", "--username", "ops@example.com"], {
    env: { AXION_PROVIDER_PASSWORD: "spare-secret" },
  });
  assert.match(spare, /^name:\s+spare\nkind:\s+time4vps\nservers:\s+0$/m);
  await fails(["providers", "create", "Bad Name!", "--username", "u", "--password-stdin"], 2, /InvalidArgument: .*name/, { input: "pw" });

  const table = await withoutSecrets(["providers", "list"]);
  assert.match(table, /^NAME\s+KIND\s+SERVERS\s+ID\s+CREATED\n/);
  assert.match(table, new RegExp(`\\nt4v\\s+time4vps\\s+0\\s+${created.provider_account.id}\\s+\\d{4}-`));
  assert.deepEqual(
    JSON.parse(await withoutSecrets(["providers", "list", "-o", "json"])).provider_accounts.map((a: { name: string }) => a.name),
    ["t4v", "spare"],
  );
  const byId = JSON.parse(await withoutSecrets(["providers", "get", created.provider_account.id, "-o", "json"]));
  assert.equal(byId.provider_account.name, "t4v", "an id works as well as a name");
  assert.match(await withoutSecrets(["provider", "get", "spare"]), /^servers:\s+0$/m);

  const renamed = JSON.parse(await withoutSecrets(["providers", "update", "spare", "--name", "spare-2", "-o", "json"]));
  assert.equal(renamed.provider_account.name, "spare-2");
  await fails(["providers", "update", "spare-2", "--password-stdin"], 2, /give --username with the new password/, { input: "pw" });
  // New credentials on the terminal: the reinstall at the end of this file logs in with them.
  inTerminal("provider-password", ["providers", "update", "t4v", "--username", "axion-test"]);
  await screenUntil("provider-password", /^Password of axion-test at time4vps:/m);
  typeLine("provider-password", providerPasswords.rotated);
  const done = await screenUntil("provider-password", /EXIT=\d+/);
  assert.match(done, /EXIT=0/, done);
  assert.match(done, /^name:\s+t4v$/m);
  assert.ok(!done.includes(providerPasswords.rotated), `the password is not echoed:\n${done}`);

  assert.match(await withoutSecrets(["providers", "delete", "spare-2"]), /^Provider account spare-2 deleted$/m);
  await fails(["providers", "get", "spare-2"], 3, /no provider account named or with id "spare-2"/);
});

test("servers: add three hosts from a key file, list with filters, get, update, names and id prefixes resolved", async () => {
  for (const [i, host] of fleet.hosts.entries()) {
    const added = await json([
      "servers",
      "add",
      names[i] as string,
      "--cluster",
      "prod",
      "--host",
      host.ip,
      "--key-file",
      keyFile,
      "--label",
      `role=${i === 2 ? "db" : "web"}`,
    ]);
    assert.equal(added.server.auth_method, "SSH_AUTH_METHOD_PRIVATE_KEY");
    assert.equal(added.server.status, "SERVER_STATUS_PENDING");
    assert.ok(!JSON.stringify(added).includes("PRIVATE KEY"), "the key never comes back");
  }
  const listed = await ok(["servers", "list"]);
  assert.match(listed, /^NAME\s+CLUSTER\s+ADDRESS\s+STATUS\s+LABELS\s+ID\n/);
  assert.match(listed, /\nweb-1\s+prod\s+\S+:22\s+pending\s+role=web\s+/);
  const web = await json(["servers", "list", "--cluster", "prod", "--selector", "role=web", "--status", "pending"]);
  assert.deepEqual(
    web.servers.map((s: { name: string }) => s.name),
    ["web-1", "web-2"],
  );
  assert.deepEqual((await json(["servers", "list", "-l", "role=db"])).servers.length, 1);
  const ids: string[] = (await json(["servers", "list"])).servers.map((s: { id: string }) => s.id);
  let common = 0;
  while (ids.every((id) => id[common] === ids[0]?.[common])) common++;
  assert.ok(common >= 4, "UUIDv7 ids made a moment apart share a prefix");
  await fails(["servers", "get", (ids[0] as string).slice(0, common)], 2, /matches 3 servers: .*give the full id or the name/);
  const byPrefix = await json(["servers", "get", (ids[2] as string).slice(0, 30)]);
  assert.equal(byPrefix.server.name, "web-3");
  assert.match(await ok(["servers", "get", "web-2"]), /address:\s+root@\S+:22/);
  const moved = await json(["servers", "update", "web-3", "--label", "role=db", "--label", "tier=data"]);
  assert.deepEqual(moved.server.labels, { role: "db", tier: "data" });
});

test("an encrypted key takes its passphrase from AXION_KEY_PASSPHRASE, never an argument; a password from stdin", async () => {
  const encrypted = ed25519KeyPair("correct horse", 4).privateKey;
  const file = join(home, "encrypted_key");
  writeFileSync(file, encrypted, { mode: 0o600 });
  await fails(["servers", "add", "vault", "--cluster", "prod", "--host", "203.0.113.7", "--key-file", file], 2, /AXION_KEY_PASSPHRASE/);
  const added = await json(["servers", "add", "vault", "--cluster", "prod", "--host", "203.0.113.7", "--key-file", file], {
    env: { AXION_KEY_PASSPHRASE: "correct horse" },
  });
  assert.equal(added.server.auth_method, "SSH_AUTH_METHOD_PRIVATE_KEY");
  const updated = await json(["servers", "update", "vault", "--password-stdin"], { input: "s3cret\n" });
  assert.equal(updated.server.auth_method, "SSH_AUTH_METHOD_PASSWORD");

  // The become (sudo) password: from stdin only, never shown, forgotten on request.
  await fails(
    ["servers", "update", "vault", "--become-password", "sudo-pw-1"],
    2,
    /--become-password is refused: .*--become-password-stdin/,
  );
  await fails(["servers", "update", "vault", "--password-stdin", "--become-password-stdin"], 2, /stdin holds one secret/, {
    input: "x\n",
  });
  const become = await axion(["servers", "update", "vault", "--become-password-stdin", "-o", "json"], { input: "sudo-pw-2\n" });
  assert.equal(become.code, 0, become.stderr);
  assert.equal(JSON.parse(become.stdout).server.become_password_set, true);
  const shown = await axion(["servers", "get", "vault"]);
  assert.match(shown.stdout, /^become: +password set$/m);
  for (const out of [become.stdout, become.stderr, shown.stdout]) assert.ok(!out.includes("sudo-pw-2"), "the password is never shown");
  const cleared = await json(["servers", "update", "vault", "--clear-become-password"]);
  assert.ok(!cleared.server.become_password_set, "cleared");
});

test("an encrypted key's passphrase is asked for on a terminal with echo off when AXION_KEY_PASSPHRASE is not set", async () => {
  const passphrase = "typed at the prompt";
  const file = join(home, "encrypted_key_prompt");
  writeFileSync(file, ed25519KeyPair(passphrase, 4).privateKey, { mode: 0o600 });
  inTerminal("passphrase", ["servers", "add", "vault-tty", "--cluster", "prod", "--host", "203.0.113.8", "--key-file", file]);
  await screenUntil("passphrase", /^Passphrase for .*encrypted_key_prompt:/m);
  typeLine("passphrase", passphrase);
  const done = await screenUntil("passphrase", /EXIT=\d+/);
  assert.match(done, /EXIT=0/, done);
  assert.match(done, /^name:\s+vault-tty$/m);
  assert.ok(!done.includes(passphrase), `the passphrase is not echoed:\n${done}`);
  assert.equal((await json(["servers", "get", "vault-tty"])).server.auth_method, "SSH_AUTH_METHOD_PRIVATE_KEY");
  await ok(["servers", "delete", "vault-tty"]);
});

test("servers test: ok with the host's facts (exit 0); an unreachable host is exit 1 naming the outcome", async () => {
  const r = await json(["servers", "test", "web-1"]);
  assert.equal(r.outcome, "CONNECTION_OUTCOME_OK");
  assert.ok(r.facts.os_id);
  assert.match(await ok(["servers", "test", "web-2"]), /outcome:\s+ok/);
  await fails(["servers", "test", "vault"], 1, /connection test of vault: (unreachable|timeout)/);
  assert.match(await ok(["servers", "delete", "vault"]), /Server vault deleted/);
});

test("servers configure --watch on a real terminal: steps live with a spinner, marks, durations, the end state; Ctrl-C on ops watch only stops watching", async () => {
  // web-2 runs meanwhile (held on its host in admin_user): Ctrl-C on its watch must leave it running.
  const web2Gate = await holdCommand(fleet, fleet.hosts[1]!, "useradd", "/usr/sbin/useradd");
  const started = await json(["servers", "configure", "web-2"]);
  const web2 = started.operation.id as string;
  inTerminal("watch2", ["ops", "watch", "web-2"]);
  await web2Gate.reached;
  await screenUntil("watch2", /^ {2}[✓=] connect/m);
  execFileSync("tmux", [...tmux, "send-keys", "-t", "watch2", "C-c"]);
  const interrupted = await screenUntil("watch2", /EXIT=\d+/);
  await web2Gate.release();
  assert.match(interrupted, /EXIT=130/, interrupted);
  assert.match(interrupted, new RegExp(`stopped watching; operation ${web2} keeps running\\. Cancel it with: axion ops cancel ${web2}`));

  // Without a terminal (a pipe): a line per step change, the steps' names learnt as they start.
  const web3 = axion(["servers", "configure", "web-3", "--watch"]);
  // web-1's admin_user step is held on its host, so the spinner of a running step is surely on screen.
  const web1Gate = await holdCommand(fleet, fleet.hosts[0]!, "useradd", "/usr/sbin/useradd");
  // The operator's 80×24 terminal: the watch starts on the screen's top row.
  inTerminal("configure1", ["servers", "configure", "web-1", "--watch"], home, operatorTerminal);
  await web1Gate.reached;
  const running = await screenUntil("configure1", /^ {2}[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] admin_user\s+(\d+\.\ds|\d+m\d\ds)$/m);
  assert.match(running, /^bootstrap on web-1 \(operation [0-9a-f-]{36}\)$/m);
  await web1Gate.release();
  const done = await screenUntil("configure1", /EXIT=\d+/);
  assert.match(done, /EXIT=0/, done);
  for (const step of [
    "connect",
    "preflight",
    "admin_user",
    "docker",
    "firewall",
    "ssh_hardening",
    "deploy_key",
    "agent",
    "agent_registered",
  ]) {
    assert.match(done, new RegExp(`^  [✓=] ${step}\\s+(\\d+\\.\\ds|\\d+m\\d\\ds)\\s+(done|unchanged)`, "m"), `step ${step}:\n${done}`);
  }
  assert.match(done, /^SUCCEEDED in \d/m);
  assert.ok(!/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/.test(done), "no spinner left once it ended");
  assert.equal(done.match(/bootstrap on web-1/g)?.length, 1, "the block is redrawn in place, not repeated");
  // Each redraw erases only its own rows: no spinner frame was pushed into the scrollback (tmux's scroll-on-clear).
  const kept = scrollback("configure1");
  assert.ok(kept.rows <= 2, `${kept.rows} rows went to the scrollback:\n${kept.text.slice(0, 3000)}`);
  assert.equal(kept.text.match(/bootstrap on web-1/g)?.length, 1, "the block once, scrollback included");
  assert.ok(!spinnerFrames.test(kept.text), "no spinner frame kept anywhere");
  assert.equal((await json(["servers", "get", "web-1"])).server.status.match(/CONFIGURED|ONLINE/)?.length, 1);

  const third = await web3;
  assert.equal(third.code, 0, third.stderr);
  assertLoggedSteps(third.stdout);
  assert.match(third.stdout, /^SUCCEEDED in /m);
  const second = await json(["ops", "watch", web2]);
  assert.equal(second.operation.status, "OPERATION_STATUS_SUCCEEDED", "the interrupted watch did not cancel it");
});

test("operations: deploy-key, recover, install-agent; ops list, get, watch, cancel", async () => {
  const key = await ok(["servers", "deploy-key", "web-1"]);
  const keyOp = /operation ([0-9a-f-]{36})/.exec(key)?.[1] as string;
  assert.match(key, new RegExp(`Follow it with: axion ops watch ${keyOp}`));
  const watched = await ok(["ops", "watch", keyOp]);
  assert.match(watched, /^deploy_key on web-1/m);
  assert.match(watched, /SUCCEEDED/);
  const recovered = await json(["servers", "recover", "web-2", "--watch"]);
  assert.equal(recovered.operation.kind, "OPERATION_KIND_RECOVERY");
  assert.equal(recovered.operation.status, "OPERATION_STATUS_SUCCEEDED");
  // Without a terminal (exit 0: it succeeded): a line per step change.
  const agent = await ok(["servers", "install-agent", "web-3", "--watch"]);
  assertLoggedSteps(agent);
  assert.match(agent, /^SUCCEEDED in /m);
  const list = await json(["ops", "list", "web-1"]);
  assert.deepEqual(list.operations.map((o: { kind: string }) => o.kind).slice(0, 2), [
    "OPERATION_KIND_DEPLOY_KEY",
    "OPERATION_KIND_BOOTSTRAP",
  ]);
  assert.match(await ok(["ops", "list", "web-1"]), /^ID\s+KIND\s+STATUS\s+STARTED\s+TOOK/);
  assert.match(await ok(["ops", "get", keyOp]), /^ {2}= deploy_key_add\s+\d+\.\ds\s+unchanged/m, "the bootstrap had added the key already");
  assert.match(await ok(["ops", "cancel", keyOp]), new RegExp(`Operation ${keyOp}: succeeded`), "an ended operation keeps its outcome");
  await fails(["ops", "get", "00000000-0000-7000-8000-000000000000"], 3, /no operation or server with id/);
});

test("agents status and servers metrics: the agent's heartbeats as a table and a sparkline per metric", async () => {
  const deadline = Date.now() + 120_000;
  let samples = 0;
  while (samples < 3 && Date.now() < deadline) {
    samples = (await json(["servers", "metrics", "web-1", "--since", "1h"])).samples.length;
    if (samples < 3) await new Promise((r) => setTimeout(r, 1000));
  }
  assert.ok(samples >= 3, "heartbeats arrived");
  const status = await json(["agents", "status", "web-1"]);
  assert.equal(status.installed, true);
  assert.match(status.status, /^SERVER_STATUS_(ONLINE|CONFIGURED)$/, "ONLINE needs the heartbeat monitor, which this harness does not run");
  assert.match(await ok(["agents", "status", "web-1"]), /last heartbeat:\s+\d/);
  const table = await ok(["servers", "metrics", "web-1", "--since", "1h"]);
  assert.match(table, /^web-1: \d+ samples in the last 1h\nMETRIC\s+LAST\s+MIN\s+MAX\s+TREND\n/);
  for (const metric of ["cpu", "memory", "load1", "disk /"])
    assert.match(table, new RegExp(`\\n${metric}\\s+\\d+\\.\\d+.*\\s[▁▂▃▄▅▆▇█]{3,}`), metric);
  await fails(["servers", "metrics", "web-1", "--since", "yesterday"], 2, /--since must look like/);
});

async function rolloutUntil(id: string, status: string, withinMs = 120_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const now = (await json(["rollout", "get", id])).rollout.status;
    if (now === status) return;
    if (Date.now() > deadline) assert.fail(`rollout ${id} is ${now}, not ${status}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

test("rollout: plan, start --watch on three hosts on a terminal (a bar per batch, a line per server), list, get, pause, resume, abort", async () => {
  const target = ["--cluster", "prod", "--canary", "1", "--batch", "2"];
  const plan = await ok(["rollout", "plan", "deploy-key-add", ...target]);
  assert.match(plan, /^3 servers in 2 batches; stops after 1 failed$/m);
  // With the API's checks: a row per server (its batch, * for the canary) and a column per step of the kind.
  assert.match(plan, /^SERVER\s+BATCH\s+PLAN\s+CONNECT\s+DEPLOY_KEY_ADD\s+REASON$/m);
  assert.match(plan, /^web-1\s+1\*\s+(unchanged|would change)\s/m);
  assert.match(plan, /^web-2\s+2\s+(unchanged|would change)\s/m);
  assert.match(plan, /^web-3\s+2\s+(unchanged|would change)\s/m);
  assert.equal((await json(["rollout", "plan", "deploy-key-add", ...target])).total, 3);
  assert.match(await ok(["rollout", "plan", "deploy-key-add", "--servers", "web-1", "--no-checks"]), /^1 server in 1 batch; /m);

  // At 80 columns the configure plan (a column per step: nine) still gives one row per server.
  inTerminal("plan", ["rollout", "plan", "configure", ...target], home, operatorTerminal);
  assert.match(await screenUntil("plan", /EXIT=\d+/), /EXIT=0/);
  // The screen's rows as they are (not joined): a wrapped row counts twice.
  const planned = execFileSync("tmux", [...tmux, "capture-pane", "-p", "-t", "plan"], { encoding: "utf8" }).split("\n");
  const planRows = planned.slice(
    0,
    planned.findIndex((l) => l.startsWith("EXIT=")),
  );
  assert.equal(planRows.length, 2 + names.length, `a row per server, none wrapped:\n${planRows.join("\n")}`);
  assert.match(planRows[1] as string, /^SERVER\s+BATCH\s+PLAN\s+WOULD CHANGE\s+REASON$/);
  for (const name of names) assert.match(planned.join("\n"), new RegExp(`^${name}\\s+[12]\\*?\\s+(unchanged|would change)\\s`, "m"));

  inTerminal("rollout", ["rollout", "start", "deploy-key-add", ...target, "--watch"], home, operatorTerminal);
  const end = await screenUntil("rollout", /EXIT=\d+/);
  assert.match(end, /EXIT=0/, end);
  assert.match(end, /^rollout [0-9a-f-]{36} deploy-key-add: succeeded/m);
  assert.match(end, /^batch 1 \(canary\) \[█{20}\] 1\/1$/m, end);
  assert.match(end, /^batch 2 \[█{20}\] 2\/2$/m);
  for (const name of names) assert.match(end, new RegExp(`^  ${name}\\s+batch [12]\\s+succeeded\\s+op [0-9a-f-]{36}`, "m"), name);
  assert.equal(end.match(/^rollout /gm)?.length, 1, "the view is redrawn in place");
  const kept = scrollback("rollout");
  assert.ok(kept.rows <= 2, `${kept.rows} rows went to the scrollback:\n${kept.text.slice(0, 3000)}`);
  assert.equal(kept.text.match(/^rollout /gm)?.length, 1, "the view once, scrollback included");

  // Without a terminal: a line per change, fields aligned, each server's end once.
  const logged = await ok(["rollout", "start", "deploy-key-add", "--servers", "web-1,web-2", "--canary", "1", "--watch"]);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: an escape sequence is what must be absent
  assert.ok(!/\u001b|█/.test(logged), logged);
  const serverLines = logged.split("\n").filter((l) => /^ {2}web-\d/.test(l));
  assert.equal(new Set(serverLines.map((l) => l.search(/ (pending|running|succeeded)\b/))).size, 1, `aligned:\n${logged}`);
  for (const name of ["web-1", "web-2"])
    assert.equal(
      serverLines.filter((l) => l.startsWith(`  ${name} `) && / succeeded\b/.test(l)).length,
      1,
      `${name} ends once:\n${logged}`,
    );

  const held = (await json(["rollout", "start", "deploy-key-add", "--servers", "web-1,web-2", "--canary", "1", "--pause-after-canary"]))
    .rollout.id as string;
  await rolloutUntil(held, "ROLLOUT_STATUS_PAUSED");
  assert.equal((await json(["rollout", "resume", held])).rollout.status, "ROLLOUT_STATUS_RUNNING");
  assert.equal((await json(["rollout", "watch", held])).rollout.status, "ROLLOUT_STATUS_SUCCEEDED");

  const slow = (await json(["rollout", "start", "deploy-key-add", ...target, "--batch-pause", "5m"])).rollout.id as string;
  await ok(["rollout", "pause", slow]);
  await rolloutUntil(slow, "ROLLOUT_STATUS_PAUSED");
  assert.match(await ok(["rollout", "abort", slow.slice(0, 30), "--reason", "changed my mind"]), new RegExp(`Rollout ${slow}: `));
  await rolloutUntil(slow, "ROLLOUT_STATUS_ABORTED");
  await fails(["rollout", "watch", slow], 1, new RegExp(`rollout ${slow} aborted`));
  // A unique id prefix shows what the full id shows, servers included; the two never reached say why.
  const full = await json(["rollout", "get", slow]);
  assert.deepEqual(await json(["rollout", "get", slow.slice(0, 20)]), full);
  const notReached = "not reached: aborted after batch 1 of 2 — changed my mind";
  assert.deepEqual(
    full.rollout.servers.map((s: { state: string; reason: string }) => [s.state, s.reason ?? ""]),
    [["ROLLOUT_SERVER_STATE_SUCCEEDED", ""], ...Array(2).fill(["ROLLOUT_SERVER_STATE_NOT_REACHED", notReached])],
  );
  const watched = await axion(["rollout", "watch", slow.slice(0, 20)]);
  assert.equal(watched.code, 1, watched.stderr);
  assert.equal(
    watched.stdout.match(new RegExp(`^  web-[23]\\s+batch 2\\s+not_reached\\s+${notReached}$`, "gm"))?.length,
    2,
    watched.stdout,
  );
  const listed = await ok(["rollout", "list"]);
  assert.match(listed, /^ID\s+KIND\s+STATUS\s+SERVERS/);
  for (const id of [held, slow]) assert.match(listed, new RegExp(id));
});

test("tokens: create (shown once), list, revoke by label; the revoked token is refused", async () => {
  const created = await json(["tokens", "create", "ci", "--expires-in", "30d"]);
  assert.match(created.bearer_token, /^\S{20,}$/);
  assert.equal(created.token.label, "ci");
  await ok(["clusters", "create", "token-scope"]);
  const scoped = await json(["tokens", "create", "ci-view", "--role", "viewer", "--cluster", "token-scope"]);
  assert.equal(scoped.token.role, "ROLE_VIEWER");
  const table = await ok(["tokens", "list"]);
  assert.match(table, /\sci\s+\S+…\s+admin\s+all\s+active\s/);
  assert.match(table, /\sci-view\s+\S+…\s+viewer\s+token-scope\s+active\s/);
  await fails(
    ["tokens", "create", "up", "--role", "admin"],
    3,
    /PermissionDenied: role: must not exceed the calling token's role \(viewer\)/,
    {
      env: { AXION_TOKEN: scoped.bearer_token },
    },
  );
  assert.equal((await json(["whoami"], { env: { AXION_TOKEN: created.bearer_token } })).token.label, "ci");
  assert.match(await ok(["tokens", "revoke", "ci"]), /Token ci revoked/);
  await fails(["clusters", "list"], 3, /run axion login/, { env: { AXION_TOKEN: created.bearer_token } });
});

test("audit: list filtered by action, target and time names who changed what; verify passes, then exits 1 naming a removed entry", async () => {
  const created = await json(["clusters", "create", "audited"]);
  await ok(["clusters", "update", "audited", "--description", "watched"]);
  await ok(["clusters", "delete", "audited"]);
  const listed = await json(["audit", "list", "--target", created.cluster.id, "--since", "1h", "--outcome", "ok"]);
  assert.deepEqual(
    listed.events.map((e: { action: string }) => e.action.split("/")[1]),
    ["UpdateCluster", "DeleteCluster"],
    "entries naming the cluster (its create named no id)",
  );
  assert.equal(listed.events[0].actor.kind, "AUDIT_ACTOR_KIND_TOKEN");
  assert.equal((await json(["audit", "list", "--until", "2000-01-01T00:00:00Z"])).events.length, 0);
  const table = await ok(["audit", "list", "--action", "axion.infrastructure.v1.ClusterService/DeleteCluster"]);
  assert.match(table, /^SEQ\s+TIME\s+ACTOR\s+ACTION\s+TARGETS\s+FROM\s+OUTCOME\n/);
  assert.match(table, /\stoken:[0-9a-f-]{36}\s+ClusterService\/DeleteCluster\s+[0-9a-f-]{36}\s+127\.0\.0\.1\s+ok\n/);
  await fails(["audit", "list", "--since", "yesterday"], 2, /--since: an ISO 8601 time or a duration ago/);
  assert.match(await ok(["audit", "verify"]), /intact:\s+yes/);

  const seq = Number(listed.events[0].seq);
  await harness.api.database.db.execute(sql`delete from audit_events where id = ${listed.events[0].event_id}`);
  await fails(["audit", "verify"], 1, new RegExp(`audit trail broken at sequence ${seq}: entry missing`));
});

test("alerts, channels, alert-rules: URL and secret from stdin or an echo-off prompt and never shown; alerts listed with filters; get by id prefix shows history and notices", async () => {
  // An owner of its own: the alerting pass below sends only to its channels.
  const owner = await harness.api.newOwner("alert-operator");
  const clients = harness.api.clients(owner.token);
  const clusterId = (await clients.clusters.createCluster({ name: "alerting" })).cluster!.id;
  const server = (
    await clients.servers.createServer({
      clusterId,
      name: "alerting-1",
      host: "10.250.0.1",
      credential: { method: { case: "password", value: "x" } },
    })
  ).server!;
  const configHome = mkdtempSync(join(tmpdir(), "axion-cli-alerts-"));
  await ok(["login", "--api", harness.api.baseUrl, "--token-stdin"], { env: { XDG_CONFIG_HOME: configHome }, input: owner.token });
  const as = { env: { XDG_CONFIG_HOME: configHome } };
  const secret = "whsec-cli-Zq8vN3pL6tR1";
  const hidden = [secret, "t0ken-path", "T0KEN-slack"];
  const shows = async (args: string[], options: Parameters<typeof axion>[1] = as) => {
    const out = await ok(args, options);
    for (const h of hidden) assert.ok(!out.includes(h), `axion ${args.join(" ")} showed ${h}`);
    return out;
  };

  await fails(["channels", "create", "x", "--url", "http://10.250.0.2/"], 2, /--url is refused: .*--url-stdin/, as);
  await fails(["channels", "create", "x", "--secret=abcdefabcdefabcdef"], 2, /--secret is refused: .*--secret-stdin/, as);
  await fails(["channels", "create", "x", "--url-stdin"], 2, /no terminal to ask on/, { ...as, input: "http://10.250.0.2/hook\n" });
  // Port 9 of a test host: nothing listens.
  const hook = await shows(["channels", "create", "hook", "--url-stdin", "--secret-stdin"], {
    ...as,
    input: `http://${fleet.hosts[0]!.ip}:9/hook/t0ken-path\n${secret}\n`,
  });
  assert.match(hook, new RegExp(`^target:\\s+http://${fleet.hosts[0]!.ip.replaceAll(".", "\\.")}:9$`, "m"));
  inTerminal("channel-url", ["channels", "create", "chat", "--kind", "slack"], configHome);
  await screenUntil("channel-url", /^URL of channel chat \(not echoed\):/m, 30_000);
  typeLine("channel-url", "https://hooks.slack.invalid/services/T0KEN-slack");
  const typed = await screenUntil("channel-url", /EXIT=\d+/, 30_000);
  assert.match(typed, /EXIT=0/, typed);
  assert.match(typed, /^kind:\s+slack$/m);
  assert.ok(!typed.includes("T0KEN-slack"), `the URL is not echoed:\n${typed}`);
  assert.match(await shows(["channels", "list"]), /^NAME\s+KIND\s+TARGET\s+ID\s+CREATED\nhook\s+webhook\s+http:\/\/\S+:9\s/);
  const tested = await axion(["channels", "test", "hook"], as);
  assert.equal(tested.code, 1, tested.stderr);
  assert.match(tested.stderr, /^axion: channel hook: not delivered: /);

  await setServerStatus(harness.api.database.db, server.id, "UNREACHABLE", "ssh: timeout", { by: "fleet_check" });
  const alerting = startAlerting({
    db: harness.api.database.db,
    cipher: createCredentialsCipher(testCredentialsKey),
    networkPolicy: defaultNetworkPolicy(),
    graceSeconds: 0,
    defaults: BUILT_IN_ALERT_DEFAULTS,
    resourceIntervalSeconds: 3600,
    timeoutMs: 2000,
    retryInitialMs: 200,
    retryMaxMs: 1000,
    maxAttempts: 1,
    loop: false,
  });
  await alerting.runOnce(); // pending
  await alerting.runOnce(); // past the grace period (0): firing, one notice per channel, each given up after its one attempt
  await alerting.stop();

  const listed = await shows(["alerts", "list"]);
  assert.match(
    listed,
    /^ID\s+KIND\s+STATE\s+SERVER\s+SINCE\s+SUMMARY\n\S+\s+server_unreachable\s+firing\s+alerting-1\s+\d{4}-.*UNREACHABLE: ssh: timeout$/m,
  );
  const firing = JSON.parse(await shows(["alerts", "list", "--server", "alerting-1", "--state", "firing", "-o", "json"])).alerts;
  assert.deepEqual(
    firing.map((a: { kind: string; server_id: string }) => [a.kind, a.server_id]),
    [["ALERT_KIND_SERVER_UNREACHABLE", server.id]],
  );
  assert.equal((await shows(["alerts", "list", "--kind", "disk"])).trim(), "(none)");
  await fails(["alerts", "list", "--state", "burning"], 2, /state/, as);
  const got = await shows(["alerts", "get", firing[0].id.slice(0, 13)]);
  assert.match(got, /^state:\s+firing$/m);
  assert.match(got, /\nHistory\nSTATE\s+AT\npending\s+\d{4}-\S+ \S+\nfiring\s+\d{4}-/);
  assert.match(got, /^hook\s+webhook\s+firing\s+failed\s+1\s+-\s+\S/m);
  assert.match(got, /^chat\s+slack\s+firing\s+failed\s+1\s+-\s+cannot resolve hooks\.slack\.invalid/m);
  await fails(["alerts", "get", "ffffffff"], 3, /no alert named or with id "ffffffff"/, as);

  assert.match(await shows(["alert-rules", "set", "disk", "--threshold", "80", "--sustained", "60"]), /^disk\s+on\s+80%\s+60s$/m);
  const rules = JSON.parse(await shows(["alert-rules", "set", "server_offline", "--no-enabled", "-o", "json"])).rules;
  assert.deepEqual([rules.server_offline, rules.disk.threshold_percent], [false, 80]);
  assert.match(await shows(["alert-rules", "list"]), /^server_offline\s+off\s+-\s+-$/m);
  await fails(["alert-rules", "set", "rollout_failed", "--threshold", "3"], 2, /rollout_failed has no threshold/, as);

  assert.match(await shows(["channels", "delete", "chat"]), /^Channel chat deleted$/m);
  assert.deepEqual(
    JSON.parse(await shows(["channels", "list", "-o", "json"])).channels.map((c: { name: string }) => c.name),
    ["hook"],
  );
  rmSync(configHome, { recursive: true, force: true });
});

test("the command runs from a build of its sources, made again when a source file changes", async () => {
  const manifest = join(process.cwd(), "cli", ".build", "manifest.json");
  const build = () => JSON.parse(readFileSync(manifest, "utf8")).entry as string;
  await ok(["--help"]);
  const first = build();
  assert.match(await ok(["clusters", "list"]), /^NAME\s+ID/);
  assert.equal(build(), first, "unchanged sources start the same build");
  const source = join(process.cwd(), "cli", "labels.ts");
  const { atime, mtime } = statSync(source);
  utimesSync(source, atime, mtime); // same content and times, a new change time: as a checkout rewriting the file
  assert.match(await ok(["clusters", "list"]), /^NAME\s+ID/);
  assert.notEqual(build(), first, "a changed source is built again");
});

test("completion scripts for bash and zsh", async () => {
  const bash = await ok(["completion", "bash"]);
  assert.match(bash, /complete -o bashdefault -o default -F _axion_yargs_completions axion/);
  assert.match(bash, /--get-yargs-completions/);
  const zsh = await ok(["completion", "zsh"]);
  assert.match(zsh, /#compdef axion/);
  const words = await ok(["--get-yargs-completions", "axion", "servers", ""], { env: { SHELL: "/bin/bash" } });
  for (const sub of ["list", "add", "configure", "metrics"]) assert.match(words, new RegExp(`^${sub}$`, "m"));
  const top = await ok(["--get-yargs-completions", "axion", ""], { env: { SHELL: "/bin/bash" } });
  for (const group of ["providers", "alerts", "channels", "alert-rules"]) assert.match(top, new RegExp(`^${group}$`, "m"));
  const alertWords = await ok(["--get-yargs-completions", "axion", "alerts", ""], { env: { SHELL: "/bin/bash" } });
  for (const sub of ["list", "get"]) assert.match(alertWords, new RegExp(`^${sub}$`, "m"));
  const providerWords = await ok(["--get-yargs-completions", "axion", "providers", ""], { env: { SHELL: "/bin/bash" } });
  for (const sub of ["list", "get", "create", "update", "delete"]) assert.match(providerWords, new RegExp(`^${sub}$`, "m"));
  const flags = await ok(["--get-yargs-completions", "axion", "servers", "update", "web-1", "--prov"], { env: { SHELL: "/bin/bash" } });
  for (const flag of ["--provider", "--provider-server-id"]) assert.match(flags, new RegExp(`^${flag}$`, "m"));
});

test("gRPC server reflection v1 and v1alpha: buf curl lists every service and calls an RPC without proto files", async () => {
  const buf = join(process.cwd(), "node_modules", ".bin", "buf");
  const curl = (args: string[]) =>
    new Promise<Run>((resolve) =>
      execFile(
        buf,
        ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect-header", `Authorization: Bearer ${token}`, ...args],
        (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }),
      ),
    );
  for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
    const r = await curl(["--reflect-protocol", protocol, "--list-services", harness.api.baseUrl]);
    assert.equal(r.code, 0, r.stderr);
    for (const service of [
      "ClusterService",
      "ServerService",
      "OperationService",
      "AgentService",
      "TokenService",
      "RequirementsService",
      "AuditService",
    ]) {
      assert.match(r.stdout, new RegExp(`^axion\\.infrastructure\\.v1\\.${service}$`, "m"), `${protocol}: ${service}`);
    }
    assert.match(r.stdout, /^grpc\.reflection\.v1alpha\.ServerReflection$/m);
    const methods = await curl(["--reflect-protocol", protocol, "--list-methods", harness.api.baseUrl]);
    assert.match(methods.stdout, /^axion\.infrastructure\.v1\.OperationService\/WatchOperation$/m);
    const called = await curl([
      "--reflect-protocol",
      protocol,
      "-H",
      `Authorization: Bearer ${token}`,
      "-d",
      "{}",
      `${harness.api.baseUrl}/axion.infrastructure.v1.ClusterService/ListClusters`,
    ]);
    assert.equal(called.code, 0, called.stderr);
    assert.equal(JSON.parse(called.stdout).clusters[0].name, "prod");
  }
  const anonymous = await new Promise<Run>((resolve) =>
    execFile(
      buf,
      ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", harness.api.baseUrl],
      (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }),
    ),
  );
  assert.notEqual(anonymous.code, 0, "reflection needs an owner token");
  assert.match(anonymous.stderr, /authenticated/i);
});

/** grpcurl (installed by scripts/install-test-deps.sh with `go install`): from GRPCURL, the PATH or Go's bin folder. */
const grpcurl =
  process.env.GRPCURL ||
  ["/usr/local/bin/grpcurl", "/usr/bin/grpcurl", join(process.env.HOME ?? "", "go", "bin", "grpcurl")].find((p) => existsSync(p));

test("gRPC server reflection with grpcurl: list, describe a method and a message, call an RPC; without a token Unauthenticated", async () => {
  assert.ok(grpcurl, "grpcurl is installed by scripts/install-test-deps.sh (or set GRPCURL)");
  const address = harness.api.baseUrl.replace("http://", "");
  const run = (args: string[]) =>
    new Promise<Run>((resolve) =>
      execFile(grpcurl as string, ["-plaintext", "-H", `authorization: Bearer ${token}`, ...args], (error, stdout, stderr) =>
        resolve({ code: error ? 1 : 0, stdout, stderr }),
      ),
    );
  const list = await run([address, "list"]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^axion\.infrastructure\.v1\.RolloutService$/m);
  const method = await run([address, "describe", "axion.infrastructure.v1.ServerService.GetServer"]);
  assert.match(
    method.stdout,
    /rpc GetServer \( \.axion\.infrastructure\.v1\.GetServerRequest \) returns \( \.axion\.infrastructure\.v1\.GetServerResponse \)/,
  );
  const message = await run([address, "describe", "axion.infrastructure.v1.Server"]);
  assert.match(message.stdout, /\.google\.protobuf\.Timestamp create_time = 13;/);
  const called = await run(["-d", "{}", address, "axion.infrastructure.v1.ClusterService/ListClusters"]);
  assert.equal(called.code, 0, called.stderr);
  assert.equal(JSON.parse(called.stdout).clusters[0].name, "prod");
  // A refusal before any handler runs is a trailers-only answer grpc-go reads as the status itself.
  const anonymous = await new Promise<Run>((resolve) =>
    execFile(grpcurl as string, ["-plaintext", address, "list"], (error, stdout, stderr) =>
      resolve({ code: error ? 1 : 0, stdout, stderr }),
    ),
  );
  assert.match(anonymous.stderr, /code = Unauthenticated/);
});

// Last: the reinstall makes web-3 a freshly bootstrapped host with a new host key.
test("servers add/update --provider link a server to an account (--no-provider unlinks it); servers reinstall --watch rebuilds through it", async () => {
  const account = JSON.parse(await withoutSecrets(["providers", "get", "t4v", "-o", "json"])).provider_account;
  const added = JSON.parse(
    await withoutSecrets([
      "servers",
      "add",
      "lb-1",
      "--cluster",
      "prod",
      "--host",
      "203.0.113.9",
      "--key-file",
      keyFile,
      "--provider",
      "t4v",
      "--provider-server-id",
      "102",
      "-o",
      "json",
    ]),
  );
  assert.equal(added.server.provider_account_id, account.id);
  assert.equal(added.server.provider, "time4vps");
  assert.equal(added.server.provider_server_id, "102");
  assert.match(await withoutSecrets(["servers", "get", "lb-1"]), /^provider:\s+t4v \(time4vps\), VPS 102$/m);
  const unlinked = JSON.parse(await withoutSecrets(["servers", "update", "lb-1", "--no-provider", "-o", "json"]));
  assert.equal(unlinked.server.provider_account_id, "");
  assert.equal(unlinked.server.provider_server_id, "");
  await fails(
    ["servers", "reinstall", "lb-1"],
    1,
    /^axion: lb-1 is linked to no provider account to rebuild through: link it with axion servers update lb-1 --provider ACCOUNT --provider-server-id ID/,
  );
  await ok(["servers", "delete", "lb-1"]);
  await fails(["servers", "update", "web-3", "--provider", "no-such-account"], 3, /no provider account named or with id "no-such-account"/);

  const linked = JSON.parse(
    await withoutSecrets(["servers", "update", "web-3", "--provider", account.id, "--provider-server-id", "101", "-o", "json"]),
  );
  assert.equal(linked.server.provider_account_id, account.id, "an account id works as well as its name");
  assert.equal(linked.server.provider_server_id, "101");
  assert.match(await withoutSecrets(["providers", "list"]), /\nt4v\s+time4vps\s+1\s/);
  await fails(["providers", "delete", "t4v"], 1, /FailedPrecondition: .*named by 1 server/);
  const oldPin = linked.server.host_key_fingerprint as string;

  // What a rebuild does to the machine (the stand-in only answers the API): new host keys, none of our configuration.
  // Done up front: nothing logs in to web-3 before the workflow's reset_host_key step forgets the old key.
  hostExec(
    fleet.hosts[2]?.name as string,
    "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh && userdel -f -r axion && rm -f /etc/sudoers.d/90-axion-axion",
  );
  const r = await axion(["servers", "reinstall", "web-3", "--watch", "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  const op = JSON.parse(r.stdout).operation;
  assert.equal(op.kind, "OPERATION_KIND_REINSTALL");
  assert.equal(op.status, "OPERATION_STATUS_SUCCEEDED", op.error);
  assert.deepEqual(
    op.steps.map((s: { name: string }) => s.name),
    ["request_rebuild", "wait_rebuild", "reset_host_key", "wait_ssh", "bootstrap"],
  );
  const rebuild = standIn.requests.filter((q) => q.method === "POST" && q.path === "server/101/reinstall");
  assert.equal(rebuild.length, 1, "one rebuild request");
  assert.equal(rebuild[0]?.user, "axion-test");
  assert.equal((rebuild[0]?.body as { os?: string } | undefined)?.os, "debian-12", "the provider's first offered OS");
  const after = JSON.parse(await withoutSecrets(["servers", "get", "web-3", "-o", "json"])).server;
  assert.equal(after.status, "SERVER_STATUS_CONFIGURED");
  assert.ok(after.host_key_fingerprint && after.host_key_fingerprint !== oldPin, "the rebuilt host's new key is pinned");
  assert.match(hostExec(fleet.hosts[2]?.name as string, "id -u axion"), /^\d+/, "the bootstrap ran again on the rebuilt host");
  assert.ok(!r.stdout.includes(providerPasswords.rotated) && !r.stderr.includes(providerPasswords.rotated));
});
