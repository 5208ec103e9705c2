// test lane: fast
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { configSchemaShape } from "../core/kernel/config.js";
import { configReference } from "../core/kernel/config-reference.js";
import { configurationDocPath, renderConfigurationDoc } from "../scripts/config-docs.js";

test("docs/configuration.md is generated from core/kernel/config.ts: every variable, its default, its meaning", () => {
  assert.deepEqual(Object.keys(configReference).sort(), Object.keys(configSchemaShape).sort(), "one entry per variable");
  assert.equal(readFileSync(configurationDocPath, "utf8"), renderConfigurationDoc(), "run npm run docs:config");
  assert.match(renderConfigurationDoc(), /\| `AGENT_HEARTBEAT_TIMEOUT` \| `40` \|/);
});
