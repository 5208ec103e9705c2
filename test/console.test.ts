import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { eq } from "drizzle-orm";
import type { BrowserContext, Page } from "playwright-core";
import { ensureConsole } from "../console/build.js";
import { issueAgentToken } from "../core/agents/agent-tokens.js";
import { setServerStatus } from "../core/inventory/server-status.js";
import { servers as serversTable } from "../db/schema.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { axeViolations, launchBrowser, type TestBrowser } from "./support/browser.js";
import { insertFleetRows } from "./support/fleet-rows.js";

/**
 * The console in a real browser (Debian's chromium, headless) against a real API on PGlite: sign-in,
 * the fleet, filters, hostile text, the token's whereabouts, the CSP, accessibility, the keyboard.
 */
const FLEET = 120;
/** What a compromised host or an old row can put on screen: markup, a terminal escape, a bidi override. */
const markup = '<img src=x onerror="window.__pwned=1;alert(1)">';
const hostileReason = `${markup} disk \u001b[2J\u001b]52;c;cHduZWQ=\u0007full \u202eevil`;
const hostileName = `<b id="injected">web</b>\u202eexe.txt`;

let api: TestApi;
let chromium: TestBrowser;
let token: string;
let hostileId: string;
let lastName: string;
let fleetIds: string[];

/** A fresh context per test: nothing carries over but what the test does. */
async function openConsole(): Promise<{ context: BrowserContext; page: Page; problems: string[]; violations: string[] }> {
  const context = await chromium.browser.newContext();
  const page = await context.newPage();
  const problems: string[] = [];
  const violations: string[] = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("dialog", (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on("console", (message) => {
    if (/Content[- ]Security[- ]Policy/i.test(message.text())) violations.push(message.text());
  });
  // Through the debugging protocol, not a script tag: the page's CSP stays exactly as served.
  await page.addInitScript(`document.addEventListener("securitypolicyviolation", (e) =>
    console.error("Content Security Policy violation: " + e.violatedDirective + " " + e.blockedURI));`);
  await page.goto(api.baseUrl);
  return { context, page, problems, violations };
}

async function signIn(page: Page): Promise<void> {
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("table", { name: "Servers" }).waitFor();
}

/** The row of a server by its exact shown name. */
const row = (page: Page, name: string) => page.getByRole("row").filter({ has: page.getByRole("rowheader", { name, exact: true }) });

before(async () => {
  const started = Date.now();
  const consoleDir = await ensureConsole();
  console.log(`console ready in ${Date.now() - started} ms`);
  api = await startTestApi({ consoleDir });
  console.log(`api ready in ${Date.now() - started} ms`);
  chromium = await launchBrowser();
  console.log(`browser ready in ${Date.now() - started} ms`);
  const owner = await api.newOwner();
  token = owner.token;
  const clients = api.clients(token);
  const prod = (await clients.clusters.createCluster({ name: "prod" })).cluster!.id;
  const staging = (await clients.clusters.createCluster({ name: "staging" })).cluster!.id;
  const credential = { method: { case: "password" as const, value: "secret" } };
  const fleet = Array.from({ length: FLEET }, (_, i) => ({
    name: `node-${String(i).padStart(3, "0")}`,
    clusterId: i % 2 === 0 ? prod : staging,
    labels: { role: i % 3 === 0 ? "db" : "web", tier: i % 4 === 0 ? "gold" : "silver" },
  }));
  fleetIds = await insertFleetRows(api.database.db, owner.ownerId, fleet);
  lastName = fleet.at(-1)!.name;
  // node-002's agent reports: its version and usage reach the fleet's columns.
  const agent = api.clients(await issueAgentToken(api.database.db, fleetIds[2]!)).agents;
  await agent.register({ serverId: fleetIds[2]!, info: { hostname: "node-002", agentVersion: "1.4.2", cpuCount: 2 } });
  await agent.heartbeat({
    serverId: fleetIds[2]!,
    sampleTime: timestampFromDate(new Date()),
    metrics: {
      cpuPercent: 42.4,
      memoryUsedBytes: 4_000_000_000n,
      memoryTotalBytes: 8_000_000_000n,
      disks: [
        { mount: "/boot", usedBytes: 9n, totalBytes: 10n },
        { mount: "/", usedBytes: 30_000_000_000n, totalBytes: 40_000_000_000n },
      ],
    },
  });
  console.log(`fleet created in ${Date.now() - started} ms`);
  const hostile = (
    await clients.servers.createServer({ clusterId: prod, name: "hostile", host: "10.71.0.1", credential, labels: { role: "bait" } })
  ).server!;
  hostileId = hostile.id;
  // The API refuses such a name and label; a row written before that rule, or by another path, is still shown.
  await api.database.db
    .update(serversTable)
    .set({ name: hostileName, labels: { role: "bait", note: markup } })
    .where(eq(serversTable.id, hostile.id));
  await setServerStatus(api.database.db, hostile.id, "UNREACHABLE", hostileReason, { by: "fleet_check" });
});

after(async () => {
  await chromium?.close();
  await api?.close();
});

test("the console is served on the API's port with a strict CSP; RPCs, /healthz and unknown paths keep their meaning", async () => {
  const page = await fetch(`${api.baseUrl}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  const csp = page.headers.get("content-security-policy") ?? "";
  for (const directive of [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
  ]) {
    assert.ok(csp.includes(directive), `CSP lacks ${directive}: ${csp}`);
  }
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  assert.equal(page.headers.get("x-content-type-options"), "nosniff");
  assert.equal(page.headers.get("referrer-policy"), "no-referrer");
  const html = await page.text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "no inline script");
  assert.doesNotMatch(html, /<style|style=/, "no inline style");

  const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
  assert.ok(script, html);
  const asset = await fetch(`${api.baseUrl}${script}`);
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get("content-type") ?? "", /^text\/javascript/);
  assert.match(asset.headers.get("cache-control") ?? "", /immutable/);
  assert.equal((await fetch(`${api.baseUrl}/assets/missing-0123456789.js`)).status, 404, "a missing asset is not the page");

  // The console's own routes answer the page; RPC paths, /healthz and /metrics are the API's.
  const route = await fetch(`${api.baseUrl}/servers/some-id`);
  assert.equal(route.status, 200);
  assert.equal(await route.text(), html);
  const rpcGet = await fetch(`${api.baseUrl}/axion.infrastructure.v1.ServerService/ListServers`);
  assert.notEqual(rpcGet.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal((await fetch(`${api.baseUrl}/healthz`)).status, 200);
  const list = await api.clients(token).servers.listServers({ pageSize: 5 });
  assert.equal(list.servers.length, 5);
});

test("sign in with a token: the fleet shows the servers, and the token is nowhere the page or another visitor could read it", async () => {
  const { context, page, problems, violations } = await openConsole();
  try {
    await signIn(page);
    await row(page, "node-000").waitFor();
    const first = row(page, "node-000");
    assert.match((await first.textContent()) ?? "", /prod.*role=db.*tier=gold.*PENDING/);
    assert.match((await page.getByRole("status").filter({ hasText: "server" }).textContent()) ?? "", /\d+/);
    // Agent version, last heartbeat, CPU, memory and the root file system (not the fuller /boot).
    const withAgent = row(page, "node-002").filter({ hasText: "1.4.2" });
    await withAgent.waitFor();
    const cells = await withAgent.getByRole("cell").allTextContents();
    assert.deepEqual(cells.slice(-5, -4), ["1.4.2"]);
    assert.match(cells.at(-4) ?? "", /just now|\d+ s ago/);
    assert.deepEqual(cells.slice(-3), ["42%", "50%", "75%"]);

    const storage = await page.evaluate<string>(
      "JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie })",
    );
    assert.ok(!storage.includes(token), "token in Web Storage or document.cookie");
    assert.deepEqual(await context.cookies(), []);
    assert.ok(!page.url().includes(token), "token in the URL");
    const dom = await page.evaluate<string>(
      'document.documentElement.outerHTML + [...document.querySelectorAll("input")].map((i) => i.value).join("\\n")',
    );
    assert.ok(!dom.includes(token), "token in the DOM");
    const history = await page.evaluate<string>("JSON.stringify(history.state) + location.href + history.length");
    assert.ok(!history.includes(token), "token in the history");

    assert.deepEqual(problems, []);
    assert.deepEqual(violations, []);
  } finally {
    await context.close();
  }
});

test("the fleet is live: a status change shows without a reload (the list is fetched again every 10 s)", async () => {
  const { context, page, problems } = await openConsole();
  try {
    await signIn(page);
    const node = row(page, "node-001");
    await node.filter({ hasText: "PENDING" }).waitFor();
    await setServerStatus(api.database.db, fleetIds[1]!, "UNREACHABLE", "ssh: connection refused", { by: "fleet_check" });
    await node.filter({ hasText: "UNREACHABLE" }).filter({ hasText: "ssh: connection refused" }).waitFor({ timeout: 25_000 });
    await setServerStatus(api.database.db, fleetIds[1]!, "PENDING", "", { by: "user" });
    await node.filter({ hasText: "PENDING" }).waitFor({ timeout: 25_000 });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a wrong token is refused and the sign-in form says so", async () => {
  const { context, page } = await openConsole();
  try {
    await page.getByLabel("API token").fill("axn_not-a-real-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("status").filter({ hasText: "refused this token" }).waitFor();
    assert.equal(await page.getByRole("table", { name: "Servers" }).count(), 0);
  } finally {
    await context.close();
  }
});

test("a label selector narrows the fleet (sent to ListServers); a bad one shows the API's error with its position", async () => {
  const { context, page, problems } = await openConsole();
  try {
    await signIn(page);
    await row(page, "node-000").waitFor();
    const selector = page.getByLabel("Label selector");
    await selector.fill("role=db,tier=gold");
    await selector.press("Enter");
    // role=db: i % 3 == 0; tier=gold: i % 4 == 0: every 12th server.
    const expected = Math.ceil(FLEET / 12);
    await page
      .getByRole("status")
      .filter({ hasText: `${expected} servers` })
      .waitFor();
    await row(page, "node-012").waitFor();
    assert.equal(await row(page, "node-001").count(), 0);

    await selector.fill("role=db,tier in (gold");
    await selector.press("Enter");
    const alert = page.getByRole("alert");
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? "", /selector: position \d+/);
    assert.equal(await selector.getAttribute("aria-invalid"), "true");

    await page.getByLabel("Status").selectOption({ label: "UNREACHABLE" });
    await selector.fill("");
    await selector.press("Enter");
    await page.getByRole("status").filter({ hasText: "1 server" }).waitFor();
    assert.equal(await page.getByRole("alert").count(), 0);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a host's and a user's hostile strings are rendered as inert, visible text", async () => {
  const { context, page, problems, violations } = await openConsole();
  try {
    await signIn(page);
    await page.getByLabel("Label selector").fill("role=bait");
    await page.getByLabel("Label selector").press("Enter");
    const hostile = page.getByRole("row").filter({ hasText: "onerror" });
    await hostile.waitFor();
    const text = (await hostile.textContent()) ?? "";
    // Markup as its characters; control and bidi characters as visible \uXXXX escapes (core/kernel/text.ts).
    assert.ok(text.includes(markup), text);
    assert.ok(text.includes('<b id="injected">web</b>\\u202eexe.txt'), text);
    assert.ok(text.includes("\\u001b[2J"), text);
    assert.ok(text.includes("\\u202eevil"), text);
    for (const raw of ["\u001b", "\u0007", "\u202e"]) assert.ok(!text.includes(raw), `raw ${JSON.stringify(raw)} on screen`);
    assert.equal(await page.locator("img, #injected, b").count(), 0, "no element made from the strings");
    assert.equal(await page.evaluate("window.__pwned"), undefined);
    assert.equal(hostileId.length > 0, true);
    assert.deepEqual(problems, []);
    assert.deepEqual(violations, []);
  } finally {
    await context.close();
  }
});

test("axe-core finds no serious or critical violation on the sign-in and fleet pages", async () => {
  const { context, page } = await openConsole();
  try {
    const serious = (vs: Awaited<ReturnType<typeof axeViolations>>) => vs.filter((v) => v.impact === "serious" || v.impact === "critical");
    await page.getByLabel("API token").waitFor();
    assert.deepEqual(serious(await axeViolations(page)), [], "sign-in page");
    await signIn(page);
    await row(page, "node-000").waitFor();
    assert.deepEqual(serious(await axeViolations(page)), [], "fleet page");
  } finally {
    await context.close();
  }
});

test("the fleet works by keyboard: sign in, filter, reach and scroll the virtualized list to its last server", async () => {
  const { context, page, problems } = await openConsole();
  try {
    // React renders after the load event: the form is there once its field is.
    await page.getByLabel("API token").waitFor();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate('document.activeElement?.getAttribute("type")'), "password");
    await page.keyboard.type(token);
    await page.keyboard.press("Enter");
    await row(page, "node-000").waitFor();
    // Virtualized: the last server is not in the document until the list is scrolled to it.
    assert.equal(await row(page, lastName).count(), 0);
    const rendered = await page.getByRole("row").count();
    assert.ok(rendered < FLEET, `${rendered} rows rendered`);

    const focused = () => page.evaluate<boolean>('document.activeElement?.getAttribute("aria-label") === "Server rows"');
    for (let i = 0; i < 20 && !(await focused()); i++) await page.keyboard.press("Tab");
    assert.ok(await focused(), "the server list takes the keyboard focus");
    await page.keyboard.press("End");
    await row(page, lastName).waitFor();

    // Back to the selector by keyboard; Enter applies it.
    await page.keyboard.press("Shift+Tab");
    await page.keyboard.press("Shift+Tab");
    assert.equal(await page.evaluate('document.activeElement?.id.endsWith("-selector")'), true);
    await page.keyboard.type("role=web");
    await page.keyboard.press("Enter");
    await page
      .getByRole("status")
      .filter({ hasText: `${FLEET - FLEET / 3} servers` })
      .waitFor();
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
