/**
 * The workflows as an earlier release shipped them, for upgrade tests: the same
 * workflows, except a heartbeat monitor that waited before its first sweep. Its
 * histories cannot be replayed by today's monitor (a timer where today's code
 * records a sweep first): what any incompatible change to a running workflow does.
 */
import { condition, setHandler, sleep } from "@temporalio/workflow";
import { type HeartbeatMonitorInput, monitorSettingsQuery, monitorSettingsSignal } from "../../workflows/definitions.js";
import { recordActivities } from "../../workflows/proxies.js";

export * from "../../workflows/index.js";

export async function heartbeatMonitorWorkflow(initial: HeartbeatMonitorInput): Promise<never> {
  let input = initial;
  setHandler(monitorSettingsSignal, (next) => {
    input = next;
  });
  setHandler(monitorSettingsQuery, () => input);
  for (;;) {
    await sleep(`${input.intervalSeconds} seconds`);
    await recordActivities.sweepLiveness({ timeoutSeconds: input.timeoutSeconds });
    await condition(() => false, "1 millisecond");
  }
}
