import { ActivityCancellationType, proxyActivities, proxyLocalActivities } from "@temporalio/workflow";
import type { Activities } from "../activities/index.js";
import { nonRetryableErrorTypes } from "./failure-types.js";
import { waitingForSshShare } from "./ssh-share.js";

/**
 * SSH steps: 1 try + 3 retries with exponential backoff; heartbeats (every SSH
 * activity sends them while it runs) tell a dead worker apart from a slow step.
 * A cancelled step is waited for: the workflow goes on only once the activity
 * has killed its remote command and stopped.
 */
export const sshActivities = waitingForSshShare(
  proxyActivities<Activities>({
    startToCloseTimeout: "20 minutes",
    heartbeatTimeout: "30 seconds",
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      maximumAttempts: 4,
      initialInterval: "2 seconds",
      backoffCoefficient: 2,
      maximumInterval: "30 seconds",
      nonRetryableErrorTypes,
    },
  }),
);

/** A connection test answers in seconds: one attempt, classified by the activity. */
export const probeActivities = waitingForSshShare(
  proxyActivities<Activities>({
    startToCloseTimeout: "90 seconds",
    heartbeatTimeout: "30 seconds",
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 1 },
  }),
);

/**
 * Database reads and writes: short, idempotent, retried until the database
 * answers. Local activities: they run in the worker that runs the workflow,
 * recorded as one marker instead of a round trip through a task queue, which
 * roughly halves the Temporal server's work per bootstrap.
 */
export const recordActivities = proxyLocalActivities<Activities>({
  startToCloseTimeout: "30 seconds",
  retry: { initialInterval: "1 second", maximumInterval: "10 seconds" },
});

/** Database work that may take longer than a workflow task should wait (pruning old metrics). */
export const maintenanceActivities = proxyActivities<Activities>({
  startToCloseTimeout: "10 minutes",
  retry: { initialInterval: "1 second", maximumInterval: "1 minute" },
});
