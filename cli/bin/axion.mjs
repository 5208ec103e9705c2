#!/usr/bin/env node
// The `axion` command: TypeScript run through tsx, resolved from this file, so it works from any folder
// (npx axion, npm link). The project's tsconfig is used whatever the caller's working directory.
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

register({ tsconfig: fileURLToPath(new URL("../../tsconfig.json", import.meta.url)) });
await import("../main.ts");
