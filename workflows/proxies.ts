import { proxyActivities } from "@temporalio/workflow";
import type { Activities } from "../activities/index.js";
import { nonRetryableErrorTypes } from "./failure-types.js";

/** SSH steps: 1 try + 3 retries with exponential backoff; heartbeats tell a dead worker apart from a slow step. */
export const sshActivities = proxyActivities<Activities>({
  startToCloseTimeout: "20 minutes",
  heartbeatTimeout: "30 seconds",
  retry: { maximumAttempts: 4, initialInterval: "2 seconds", backoffCoefficient: 2, maximumInterval: "30 seconds", nonRetryableErrorTypes },
});

/** A connection test answers in seconds: one attempt, classified by the activity. */
export const probeActivities = proxyActivities<Activities>({
  startToCloseTimeout: "90 seconds",
  retry: { maximumAttempts: 1 },
});

/** Database writes: short, retried until the database answers. */
export const recordActivities = proxyActivities<Activities>({
  startToCloseTimeout: "30 seconds",
  retry: { initialInterval: "1 second", maximumInterval: "10 seconds" },
});
