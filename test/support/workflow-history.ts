import assert from "node:assert/strict";
import type { Client } from "@temporalio/client";

/** gRPC NOT_FOUND: the workflow (a child of a rollout, say) has not been started yet. */
const NOT_FOUND = 5;

/**
 * Resolves once the workflow's history holds an ActivityTaskScheduled event for
 * `activityType` (e.g. "ensureDocker"): the step has begun, and history keeps it,
 * so a fast step cannot pass unseen. Reads the history with a long poll
 * (waitNewEvent), which answers as soon as a new event is written. Scheduled,
 * not started: Temporal writes ActivityTaskStarted only when the attempt ends.
 * To act while a step is still running, hold it on the host (support/host-gate.ts).
 */
export async function activityScheduled(client: Client, workflowId: string, activityType: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let nextPageToken: Uint8Array | undefined;
  while (Date.now() < deadline) {
    let response: Awaited<ReturnType<typeof client.workflowService.getWorkflowExecutionHistory>>;
    try {
      response = await client.workflowService.getWorkflowExecutionHistory({
        namespace: client.options.namespace,
        execution: { workflowId },
        waitNewEvent: true,
        ...(nextPageToken ? { nextPageToken } : {}),
      });
    } catch (error) {
      if ((error as { code?: number }).code !== NOT_FOUND) throw error;
      // Not started yet: a started workflow stays findable, so asking again cannot miss it.
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    for (const event of response.history?.events ?? []) {
      if (event.activityTaskScheduledEventAttributes?.activityType?.name === activityType) return;
      if (
        event.workflowExecutionCompletedEventAttributes ||
        event.workflowExecutionFailedEventAttributes ||
        event.workflowExecutionCanceledEventAttributes ||
        event.workflowExecutionTerminatedEventAttributes ||
        event.workflowExecutionTimedOutEventAttributes ||
        event.workflowExecutionContinuedAsNewEventAttributes
      ) {
        assert.fail(`${workflowId} ended without scheduling ${activityType}`);
      }
    }
    if (!response.nextPageToken?.length) assert.fail(`${workflowId}: history ended without scheduling ${activityType}`);
    nextPageToken = response.nextPageToken;
  }
  assert.fail(`${workflowId} did not schedule ${activityType} within ${timeoutMs} ms`);
}
