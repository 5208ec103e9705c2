import { ActivityCancellationType, isCancellation, proxyActivities } from "@temporalio/workflow";
import type { Activities } from "../activities/index.js";
import type { PlanInput, PlanResult, ServerPlan } from "./definitions.js";
import { failureMessage } from "./failure-types.js";
import { waitingForSshShare } from "./ssh-share.js";

/** How many servers a plan checks at once unless its input says otherwise. */
export const PLAN_CONCURRENCY = 20;

/** One activity per server; it classifies every failure itself, so one retry covers only a lost worker. */
const planActivities = waitingForSshShare(
  proxyActivities<Activities>({
    startToCloseTimeout: "10 minutes",
    heartbeatTimeout: "30 seconds",
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 2, initialInterval: "2 seconds" },
  }),
);

/**
 * A plan (check mode): each server's read-only checks for the kind, a bounded
 * number of servers at a time, answered in input order. Not an operation: no
 * operation row, no status change, nothing written on any host. History: one
 * activity per server.
 */
export async function planWorkflow(input: PlanInput): Promise<PlanResult> {
  const ids = input.serverIds;
  const servers: ServerPlan[] = new Array(ids.length);
  let next = 0;
  const lane = async () => {
    while (next < ids.length) {
      const i = next++;
      const serverId = ids[i] as string;
      servers[i] = await planActivities.planServer({ serverId, kind: input.kind }).catch((error): ServerPlan => {
        if (isCancellation(error)) throw error;
        return { serverId, serverName: "", outcome: "cannot", reason: `the check failed: ${failureMessage(error)}`, steps: [] };
      });
    }
  };
  const lanes = Math.max(1, Math.min(input.concurrency ?? PLAN_CONCURRENCY, ids.length));
  await Promise.all(Array.from({ length: lanes }, lane));
  return { servers };
}
