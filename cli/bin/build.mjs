// The `axion` command built into plain JavaScript (one entry, a chunk per command) with esbuild, the
// bundler tsx itself runs on, and cached in cli/.build (gitignored). A build is used only while every file
// it was built from (ours, the generated code, the packages) has the size and change time it had then.
// Plain JavaScript on purpose: the bin loads this file before anything is compiled.
//   node cli/bin/build.mjs   builds now (npm run cli:build); the bin otherwise builds on first use.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const root = fileURLToPath(new URL("../..", import.meta.url));
const cacheDir = join(root, "cli", ".build");
const manifestPath = join(cacheDir, "manifest.json");
/** Raised when the build's output or options change, so that older builds are not used. */
const FORMAT = 1;
/** Builds no longer current are removed only after this long: a running command may still load their chunks. */
const KEEP_OLD_MS = 10 * 60_000;

const signature = (path) => {
  const s = statSync(path);
  return [s.size, s.ctimeMs];
};

/**
 * What a build depends on: our files one by one, a package by its package.json (an install or upgrade
 * rewrites it), so a start checks some 50 files rather than every module of the bundle.
 */
function dependencies(inputs) {
  const files = new Set([fileURLToPath(import.meta.url), join(root, "tsconfig.json"), join(root, "package.json")]);
  for (const input of inputs) {
    const path = resolve(root, input);
    const m = /^(.*[\\/]node_modules[\\/](?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(path);
    files.add(m ? join(m[1], "package.json") : path);
  }
  return [...files];
}

/** The built entry point if it is current, else undefined. */
export function freshBuild() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  } catch {
    return undefined;
  }
  if (manifest.format !== FORMAT) return undefined;
  for (const [path, [size, ctimeMs]] of Object.entries(manifest.inputs)) {
    try {
      const [s, c] = signature(path);
      if (s !== size || c !== ctimeMs) return undefined;
    } catch {
      return undefined;
    }
  }
  return join(cacheDir, manifest.entry);
}

/** esbuild as tsx depends on it (not a dependency of ours). */
async function loadEsbuild() {
  const fromTsx = createRequire(createRequire(join(root, "package.json")).resolve("tsx/package.json"));
  const module = await import(pathToFileURL(fromTsx.resolve("esbuild")).href);
  return module.default ?? module;
}

/**
 * yargs finds its locale files (and the package.json it reads) from its own module's URL; inside the
 * bundle that would be the chunk's, so it is pinned to the file's real place.
 */
const yargsModuleUrl = {
  name: "yargs-module-url",
  setup(build) {
    build.onLoad({ filter: /[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/ }, (args) => ({
      contents: readFileSync(args.path, "utf8").replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href)),
      loader: "js",
    }));
  },
};

/**
 * yargs' ES module build lays out --help with cliui's ES module, whose wrap cuts words at the width
 * ("co/nfig"); cliui's CommonJS build wraps at word boundaries (wrap-ansi) and counts wide characters.
 */
const cliuiWordWrap = {
  name: "cliui-word-wrap",
  setup(build) {
    build.onResolve({ filter: /^cliui$/ }, (args) => ({ path: createRequire(args.importer).resolve("cliui") }));
  },
};

/** Builds into a new folder, then points the manifest at it (an atomic rename: concurrent builds are safe). */
export async function build() {
  const esbuild = await loadEsbuild();
  const started = Date.now();
  const id = `b-${started.toString(36)}-${process.pid}`;
  mkdirSync(cacheDir, { recursive: true });
  let result;
  try {
    result = await esbuild.build({
      absWorkingDir: root,
      entryPoints: { main: "cli/main.ts" },
      outdir: join(cacheDir, id),
      outExtension: { ".js": ".mjs" },
      chunkNames: "chunks/[name]-[hash]",
      bundle: true,
      splitting: true,
      format: "esm",
      platform: "node",
      target: "node20",
      tsconfig: join(root, "tsconfig.json"),
      // Packages written as CommonJS call require(); an ES module has none of its own.
      banner: { js: 'import { createRequire as __axionRequire } from "node:module"; const require = __axionRequire(import.meta.url);' },
      minifyWhitespace: true,
      minifySyntax: true,
      legalComments: "none",
      metafile: true,
      logLevel: "silent",
      plugins: [yargsModuleUrl, cliuiWordWrap],
    });
  } finally {
    await esbuild.stop?.();
  }
  const inputs = {};
  let stable = true;
  for (const path of dependencies(Object.keys(result.metafile.inputs))) {
    inputs[path] = signature(path);
    // Changed while it was read: this build serves this run only.
    if (inputs[path][1] > started) stable = false;
  }
  if (stable) {
    const temporary = `${manifestPath}.${id}`;
    writeFileSync(temporary, `${JSON.stringify({ format: FORMAT, entry: `${id}/main.mjs`, inputs })}\n`);
    renameSync(temporary, manifestPath);
    for (const old of readdirSync(cacheDir)) {
      if (!old.startsWith("b-") || old === id) continue;
      const path = join(cacheDir, old);
      if (started - statSync(path).mtimeMs > KEEP_OLD_MS) rmSync(path, { recursive: true, force: true });
    }
  }
  return join(cacheDir, id, "main.mjs");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`built ${relative(root, await build())}\n`);
}
