// The console built with Vite into console/dist (gitignored), as the CLI is built into cli/.build: a build
// is used only while every file it was built from (the console's sources, the generated descriptors, the
// one text rule, the installed packages) has the size and change time it had then.
//   npm run console:build   builds now; `npm start` builds at first start when missing or stale.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const consoleRoot = join(root, "console");
export const consoleDist = join(consoleRoot, "dist");
/** Not served: api/console-static.ts serves only known file types. */
const manifestPath = join(consoleDist, ".inputs");
/** Raised when the build's output or options change, so that older builds are not used. */
const FORMAT = 1;

function filesUnder(dir: string, into: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) filesUnder(path, into);
    else into.push(path);
  }
  return into;
}

function inputs(): string[] {
  return [
    ...filesUnder(join(consoleRoot, "src")),
    join(consoleRoot, "index.html"),
    join(consoleRoot, "vite.config.ts"),
    fileURLToPath(import.meta.url),
    ...filesUnder(join(root, "gen")),
    join(root, "core", "kernel", "text.ts"),
    // An install or upgrade of any package rewrites it.
    join(root, "node_modules", ".package-lock.json"),
  ];
}

const signature = (path: string): [number, number] => {
  const s = statSync(path);
  return [s.size, s.ctimeMs];
};

/** Whether console/dist is a build of today's files. */
export function consoleIsFresh(): boolean {
  let manifest: { format: number; inputs: Record<string, [number, number]> };
  try {
    manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  } catch {
    return false;
  }
  if (manifest.format !== FORMAT) return false;
  const now = inputs();
  if (now.length !== Object.keys(manifest.inputs).length) return false;
  for (const path of now) {
    const recorded = manifest.inputs[path];
    try {
      const [size, ctime] = signature(path);
      if (!recorded || recorded[0] !== size || recorded[1] !== ctime) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** Builds into a new folder, then swaps it in for console/dist. */
export async function buildConsole(): Promise<string> {
  const { build } = await import("vite");
  const started = Date.now();
  const before = Object.fromEntries(inputs().map((p) => [p, signature(p)]));
  const outDir = join(consoleRoot, `.dist-${started.toString(36)}-${process.pid}`);
  mkdirSync(outDir, { recursive: true });
  try {
    await build({ configFile: join(consoleRoot, "vite.config.ts"), build: { outDir }, logLevel: "warn" });
    // Changed while it was read: the build serves, but the next start builds again.
    const stable = Object.values(before).every(([, ctime]) => ctime <= started);
    if (stable) writeFileSync(join(outDir, ".inputs"), `${JSON.stringify({ format: FORMAT, inputs: before })}\n`);
    rmSync(consoleDist, { recursive: true, force: true });
    renameSync(outDir, consoleDist);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
  return consoleDist;
}

/** console/dist, built first when missing or stale. */
export async function ensureConsole(): Promise<string> {
  if (!consoleIsFresh()) await buildConsole();
  return consoleDist;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildConsole();
  process.stdout.write(`built ${relative(root, consoleDist)}\n`);
}
