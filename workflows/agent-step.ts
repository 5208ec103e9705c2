import { ApplicationFailure, sleep } from "@temporalio/workflow";
import type { ProgressTracker } from "./progress.js";
import { recordActivities, sshActivities } from "./proxies.js";

const REGISTRATION_DEADLINE_MS = 2 * 60_000;

/** Installs the agent (unless it already runs and is registered), then waits durably until it registers. */
export async function installAndAwaitAgent(progress: ProgressTracker, serverId: string, force: boolean): Promise<void> {
  const installed = await progress.step("agent", () => sshActivities.installAgent({ serverId, force }));
  if (installed.skipped || !installed.changed || !installed.installedAt) return;
  const since = installed.installedAt;
  await progress.step("agent_registered", async () => {
    const deadline = Date.now() + REGISTRATION_DEADLINE_MS;
    while (!(await recordActivities.agentRegisteredSince({ serverId, since }))) {
      if (Date.now() > deadline) {
        throw ApplicationFailure.nonRetryable(
          "the agent did not register within 2 minutes: check that AGENT_API_URL is reachable from the server",
          "AgentNotRegistered",
        );
      }
      await sleep("2 seconds");
    }
    return { changed: true, detail: "agent registered" };
  });
}
