// test lane: fast
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import proto from "@temporalio/proto";
import { DefaultLogger, Runtime, Worker } from "@temporalio/worker";
import { workflowsPath } from "../temporal/worker.js";
import * as workflows from "../workflows/index.js";

/**
 * Histories recorded from real runs (`npm run histories:record`) replayed against the
 * workflow code as it is now: a change that would break workflows already running in a
 * deployment fails here, before it ships (README: "Changing a workflow safely").
 */
const { History } = proto.temporal.api.history.v1;
/** Written by scripts/record-histories.ts with History.toObject. */
const historiesIn = (folder: string) => {
  const dir = fileURLToPath(new URL(folder, import.meta.url));
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((file) => {
      const history = History.fromObject(JSON.parse(readFileSync(join(dir, file), "utf8")));
      const type = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? "";
      return { name: file.replace(/\.json$/, ""), type, history };
    });
};
const recorded = historiesIn("histories");
/** Recorded by earlier releases, kept as they were: runs that closed before a workflow changed (behind a `patched()`). */
const recordedBeforeUpgrade = historiesIn("support/histories-before-upgrade");

async function replayFailures(path: string, histories = recorded): Promise<string[]> {
  const failures: string[] = [];
  const results = Worker.runReplayHistories(
    { workflowsPath: path, replayName: "recorded-histories" },
    histories.map((r) => ({ workflowId: r.name, history: r.history })),
  );
  for await (const result of results) if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  return failures;
}

describe("recorded workflow histories replay on the current code", () => {
  Runtime.install({ logger: new DefaultLogger("ERROR") });

  test("there is a recorded history of every workflow kind", () => {
    const kinds = new Set(recorded.map((r) => r.type));
    for (const name of Object.keys(workflows)) assert.ok(kinds.has(name), `no history of ${name} in test/histories`);
  });

  test("every recorded history replays without a non-determinism error", async () => {
    assert.deepEqual(await replayFailures(workflowsPath), []);
  });

  test("runs that closed before a change replay on the current code too (a failed rollout's run that completed)", async () => {
    assert.ok(recordedBeforeUpgrade.some((r) => r.name === "rollout-failed-completed"));
    assert.deepEqual(await replayFailures(workflowsPath, recordedBeforeUpgrade), []);
  });

  test("the replay catches an incompatible change (the heartbeat monitor as an earlier release shipped it)", async () => {
    const failures = await replayFailures(fileURLToPath(new URL("support/workflows-before-upgrade.ts", import.meta.url)));
    assert.ok(
      failures.some((f) => f.startsWith("heartbeat-monitor:")),
      `the earlier monitor replays today's history: ${failures.join("; ")}`,
    );
  });
});
