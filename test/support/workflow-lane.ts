import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after } from "node:test";
import { pathToFileURL } from "node:url";
import { shareWorkflowTestbed } from "./workflow-testbed.js";

/**
 * The fast lane's workflow files in one process, on one bed (test server, database, worker,
 * bundle): starting a bed costs seconds of CPU, the tests on it a fraction of a second each.
 * Loads every `// test lane: fast` file of test/ that uses the workflow bed, or the files named
 * in AXION_FAST_WORKFLOW_FILES (space-separated). Run by scripts/test-fast.sh.
 */
const testDir = join(process.cwd(), "test");
const named = process.env.AXION_FAST_WORKFLOW_FILES?.split(" ").filter(Boolean);
const files =
  named ??
  readdirSync(testDir)
    .filter((name) => name.endsWith(".test.ts"))
    .map((name) => join("test", name))
    .filter((file) => {
      const text = readFileSync(file, "utf8");
      return text.startsWith("// test lane: fast\n") && text.includes("support/workflow-testbed");
    });

after(shareWorkflowTestbed());
for (const file of files) await import(pathToFileURL(join(process.cwd(), file)).href);
