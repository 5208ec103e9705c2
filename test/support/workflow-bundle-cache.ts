import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from "@temporalio/worker";

/** Every source a workflow bundle can reach: the repository's TypeScript outside tests, and the SDK's version. */
function sourceHash(root: string, extraFiles: string[]): string {
  const hash = createHash("sha256");
  const skip = new Set(["node_modules", ".tools", ".git", "data", "test", "cli", "bench"]);
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith(".") || skip.has(entry.name)) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|js|mjs)$/.test(entry.name)) hash.update(path).update(readFileSync(path));
    }
  };
  walk(root);
  for (const file of extraFiles) hash.update(file).update(readFileSync(file));
  hash.update(readFileSync(join(root, "node_modules", "@temporalio", "workflow", "package.json")));
  return hash.digest("hex").slice(0, 16);
}

/**
 * The workflow bundle, built once per change of the sources: the fast lane's workflow files run in
 * processes of their own, and bundling costs each of them seconds of CPU. Kept in .tools/ (not
 * committed), keyed by the content of every source it can include, so an edit (a break to watch a
 * test fail) always gets a new bundle.
 */
export async function cachedWorkflowBundle(options: {
  root: string;
  workflowsPath: string;
  interceptorModules: string[];
  logger: Parameters<typeof bundleWorkflowCode>[0]["logger"];
}): Promise<WorkflowBundleWithSourceMap> {
  const dir = join(options.root, ".tools", "workflow-bundles");
  const file = join(dir, `${sourceHash(options.root, options.interceptorModules)}.json`);
  try {
    return JSON.parse(readFileSync(file, "utf8")) as WorkflowBundleWithSourceMap;
  } catch {
    const bundle = await bundleWorkflowCode({
      workflowsPath: options.workflowsPath,
      workflowInterceptorModules: options.interceptorModules,
      logger: options.logger,
    });
    mkdirSync(dir, { recursive: true });
    const partial = `${file}.${process.pid}`;
    writeFileSync(partial, JSON.stringify(bundle));
    renameSync(partial, file);
    // Bundles of sources since changed are never read again.
    for (const old of readdirSync(dir)) if (join(dir, old) !== file && old.endsWith(".json")) rmSync(join(dir, old), { force: true });
    return bundle;
  }
}
