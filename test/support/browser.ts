import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { type Browser, chromium, type Page } from "playwright-core";

/** Debian's chromium (scripts/install-test-deps.sh); playwright-core brings no browser of its own. */
const CHROMIUM = process.env.AXION_CHROMIUM ?? "/usr/bin/chromium";

export interface TestBrowser {
  browser: Browser;
  /** Ends chromium with its whole process group, also when the browser hangs. */
  close(): Promise<void>;
}

/**
 * Headless chromium in its own process group (playwright starts it detached): closing, a failed test
 * or this process exiting ends the group, so no renderer or GPU process outlives the test.
 */
export async function launchBrowser(): Promise<TestBrowser> {
  const server = await chromium.launchServer({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  const pid = server.process().pid;
  const killGroup = () => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {}
  };
  process.once("exit", killGroup);
  const browser = await chromium.connect(server.wsEndpoint());
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
      await Promise.race([server.close(), new Promise((r) => setTimeout(r, 5000))]).catch(() => {});
      killGroup();
      process.off("exit", killGroup);
    },
  };
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[] }[];
}

/** axe-core run in the page (added through the debugging protocol, so the page's CSP does not apply). */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  return page.evaluate<AxeViolation[]>(
    "axe.run().then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })))",
  );
}
