#!/usr/bin/env node
// The `axion` command, resolved from this file so it works from any folder (npx axion, npm link). It runs
// the command built into plain JavaScript (./build.mjs: built on first use and again whenever a source
// changed); compiling the TypeScript through tsx on every start cost about 2 CPU-s. Where no build can be
// written (a read-only checkout), it runs the sources through tsx as before.
import { fileURLToPath, pathToFileURL } from "node:url";
import { build, freshBuild } from "./build.mjs";

let entry = freshBuild();
if (!entry) {
  try {
    entry = await build();
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).split("\n", 1)[0];
    process.stderr.write(`axion: cannot build the command (${reason}); running it from source, which starts slowly\n`);
  }
}
if (entry) {
  await import(pathToFileURL(entry).href);
} else {
  const { register } = await import("tsx/esm/api");
  register({ tsconfig: fileURLToPath(new URL("../../tsconfig.json", import.meta.url)) });
  await import("../main.ts");
}
