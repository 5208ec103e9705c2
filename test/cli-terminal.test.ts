import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startTestApi, type TestApi } from "./support/api.js";
import { type TerminalRun, terminal } from "./support/terminal.js";

/**
 * The `axion` command in an 80×24 terminal (tmux) against a real API: tables fitted to the width, --help
 * wrapped at word boundaries; without a terminal nothing is cut; completion offers the API's names.
 */
const bin = join(process.cwd(), "cli", "bin", "axion.mjs");
const tty = terminal();
let api: TestApi;
let home: string;
let token: string;
const longLabels = { role: "frontend-cache-tier", team: "payments-platform-eu", zone: "eu-west-3c" };
const names = ["web-frontend-01", "web-frontend-02", "database-primary-eu-west"];
const wideDescription = "東京データセンターの本番環境クラスター 🚀 with a long English tail that goes on";

function axion(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
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
          ...env,
        },
      },
      (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end();
  });
}

const run = (args: string[], size?: { columns: number; rows: number }): Promise<TerminalRun> =>
  tty.run([process.execPath, bin, ...args], { env: { XDG_CONFIG_HOME: home }, ...size });

before(async () => {
  api = await startTestApi();
  home = mkdtempSync(join(tmpdir(), "axion-cli-terminal-"));
  token = (await api.newOwner()).token;
  const clients = api.clients(token);
  const cluster = (await clients.clusters.createCluster({ name: "production-eu-west", description: wideDescription, labels: longLabels }))
    .cluster!;
  await clients.clusters.createCluster({ name: "staging" });
  for (const [i, name] of names.entries()) {
    await clients.servers.createServer({
      clusterId: cluster.id,
      name,
      host: `frontend-${i}.eu-west-3.compute.example.internal`,
      sshPort: 2222,
      labels: longLabels,
      credential: { method: { case: "password", value: "secret" } },
    });
  }
  const login = await new Promise<number>((resolve) => {
    const child = execFile(process.execPath, [bin, "login", "--api", api.baseUrl, "--token-stdin"], {
      env: { ...process.env, XDG_CONFIG_HOME: home, AXION_API: undefined, AXION_TOKEN: undefined },
    });
    child.on("exit", (code) => resolve(code ?? 1));
    child.stdin?.end(`${token}\n`);
  });
  assert.equal(login, 0, "axion login");
});

after(async () => {
  tty.close();
  await api?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

/** The rows a command printed (with the history, up to the exit line). */
function printedRows(r: TerminalRun): string[] {
  assert.equal(r.exitCode, 0, r.all.join("\n"));
  return r.all.slice(
    0,
    r.all.findIndex((l) => l.startsWith("EXIT=")),
  );
}

test("servers list at 80 columns: one row per server, free text cut with …, the status whole, a shown id prefix still names its server", async () => {
  const rows = printedRows(await run(["servers", "list"]));
  // A wrapped row would take two rows of the screen.
  assert.equal(rows.length, 1 + names.length, rows.join("\n"));
  assert.match(rows[0] as string, /^NAME\s+CLUSTER\s+ADDRESS\s+STATUS\s+LABELS\s+ID$/);
  assert.ok(
    rows.some((r) => r.includes("…")),
    `something was cut: ${rows.join("\n")}`,
  );
  const ids = (
    JSON.parse((await axion(["servers", "list", "-o", "json"], { AXION_API: api.baseUrl, AXION_TOKEN: token })).stdout) as {
      servers: { id: string; name: string }[];
    }
  ).servers;
  for (const row of rows.slice(1)) {
    assert.match(row, /\spending\s/, `the status is whole: ${row}`);
    const shown = /(\S+?)…?$/.exec(row)?.[1] as string;
    const server = ids.find((s) => s.id.startsWith(shown));
    assert.ok(server && shown.length >= 13, `the ID column shows a prefix of an id: ${row}`);
    const got = await axion(["servers", "get", shown, "-o", "json"]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(JSON.parse(got.stdout).server.name, server.name, `the shown prefix ${shown} names ${server.name}`);
  }
});

test("clusters list at 80 columns with wide characters in a description: each row fits, cut at a character", async () => {
  const rows = printedRows(await run(["clusters", "list"]));
  assert.equal(rows.length, 3, rows.join("\n"));
  const production = rows.find((r) => r.startsWith("production-eu-west")) as string;
  assert.match(production, /東京.*…$/u, production);
});

test("without a terminal nothing is cut (COLUMNS cuts when set); -o json keeps every value", async () => {
  const env = { AXION_API: api.baseUrl, AXION_TOKEN: token };
  const piped = await axion(["servers", "list"], env);
  assert.equal(piped.code, 0, piped.stderr);
  assert.ok(!piped.stdout.includes("…"), piped.stdout);
  assert.match(piped.stdout, /role=frontend-cache-tier,team=payments-platform-eu,zone=eu-west-3c\s+[0-9a-f-]{36}\n/);
  const narrow = await axion(["servers", "list"], { ...env, COLUMNS: "80" });
  for (const line of narrow.stdout.trimEnd().split("\n")) assert.ok([...line].length <= 80, `COLUMNS=80: ${line}`);
  assert.ok(narrow.stdout.includes("…"));
  const json = JSON.parse((await axion(["clusters", "list", "-o", "json"], { ...env, COLUMNS: "40" })).stdout);
  assert.equal(json.clusters[0].description, wideDescription);
});

test("--help at 80 columns wraps at word boundaries: every word on the screen is a word of the help", async () => {
  // Words the old layout cut at the 80th column ("snake_case fie/lds", "AXION_KEY_PASSPHRA/SE").
  const add = printedRows(await run(["servers", "add", "--help"])).join("\n");
  for (const word of ["fields)", "AXION_KEY_PASSPHRASE", "numeric"])
    assert.match(add, new RegExp(`(^|\\s)${word.replace(")", "\\)")}(\\s|$)`), add);
  for (const command of [["servers"], ["servers", "add"], ["rollout", "start"]]) {
    const wide = printedRows(await run([...command, "--help"], { columns: 400, rows: 80 }));
    const words = new Set(wide.join(" ").split(/\s+/));
    const narrow = printedRows(await run([...command, "--help"]));
    for (const row of narrow) {
      assert.ok(row.length <= 80, row);
      for (const word of row.split(/\s+/).filter(Boolean)) assert.ok(words.has(word), `"${word}" is a cut word: ${row}`);
    }
  }
});

test("completion offers server and cluster names from the API with the saved login; silent when the API is away", async () => {
  const complete = async (words: string[], env: Record<string, string> = {}) => {
    const r = await axion(["--get-yargs-completions", "axion", ...words], { SHELL: "/bin/bash", ...env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    return r.stdout.trim().split("\n").filter(Boolean);
  };
  assert.deepEqual((await complete(["servers", "get", ""])).sort(), [...names].sort());
  assert.deepEqual(await complete(["servers", "configure", "web"]), ["web-frontend-01", "web-frontend-02"]);
  assert.deepEqual((await complete(["ops", "watch", "dat"])).sort(), ["database-primary-eu-west"]);
  assert.deepEqual((await complete(["clusters", "delete", ""])).sort(), ["production-eu-west", "staging"]);
  assert.deepEqual(await complete(["rollout", "plan", "configure", "--cluster", "st"]), ["staging"]);
  assert.deepEqual(await complete(["rollout", "start", "configure", "--servers", "web-frontend-01,web"]), [
    "web-frontend-01,web-frontend-02",
  ]);
  assert.ok((await complete(["servers", ""])).includes("configure"), "commands as before");
  assert.ok((await complete(["servers", "get", "web-frontend-01", "--"])).includes("--output"), "options as before");
  const started = Date.now();
  assert.deepEqual(await complete(["servers", "get", ""], { AXION_API: "http://192.0.2.1:9" }), [], "an unreachable API: nothing");
  assert.ok(Date.now() - started < 8000, "within its time bound");

  // bash, as a user's shell runs the script: COMPREPLY holds the names.
  const script = (await axion(["completion", "bash"])).stdout;
  // Asynchronously: the API answering it lives in this process.
  const bash = await new Promise<string>((resolve, reject) =>
    execFile(
      "bash",
      [
        "-c",
        `axion() { ${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} "$@"; }\n${script}\nCOMP_WORDS=(axion servers test '') COMP_CWORD=3\n_axion_yargs_completions\nprintf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      { env: { ...process.env, XDG_CONFIG_HOME: home, SHELL: "/bin/bash" } },
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    ),
  );
  assert.deepEqual(bash.trim().split("\n").sort(), [...names].sort());
  const fish = (await axion(["completion", "fish"])).stdout;
  assert.match(fish, /^complete -c axion -f -a '\(__axion_yargs_completions\)'$/m);
  assert.match(fish, /^ {4}SHELL=fish axion --get-yargs-completions \$words/m);
});
