import { ApplicationFailure, CancellationScope, isCancellation, workflowInfo } from "@temporalio/workflow";
import { busyStatuses } from "../core/kernel/kinds.js";
import type { OperationInput } from "./definitions.js";
import { FailureType, failureMessage, failureType, SshErrorType, unreachableErrorTypes } from "./failure-types.js";
import type { ProgressTracker } from "./progress.js";
import { recordActivities } from "./proxies.js";

/**
 * The frame every server operation runs in: the workflow first claims its
 * operation row (a row that ended before the workflow started means: do
 * nothing), the row is finished exactly once, and a failure leaves the server
 * in a status that says why (UNREACHABLE after SSH retries, HOSTKEY_MISMATCH
 * set by the SSH layer, ERROR otherwise). A cancellation is recorded once the
 * running step has stopped (SSH steps kill their remote command first); a
 * server left PROVISIONING or REINSTALLING goes to ERROR with the step that
 * was cut, so it can be operated again.
 */
export async function runOperation<T>(
  input: OperationInput,
  progress: ProgressTracker,
  body: () => Promise<T>,
  options: { markServerOnFailure: boolean } = { markServerOnFailure: true },
): Promise<T> {
  if (input.nested) return body();
  if (!(await recordActivities.claimOperation({ operationId: input.operationId, runId: workflowInfo().runId }))) {
    throw ApplicationFailure.nonRetryable(`operation ${input.operationId} is no longer running: nothing was done`, "OperationNotRunning");
  }
  try {
    const result = await body();
    await recordActivities.finishOperation({ operationId: input.operationId, status: "SUCCEEDED", result: progress.summary() });
    progress.finish();
    return result;
  } catch (error) {
    const message = failureMessage(error);
    // A step that failed on its own after the cancel was asked for (before it heard of it) still ends a cancelled operation.
    const cancelled = isCancellation(error) || CancellationScope.current().consideredCancelled;
    await CancellationScope.nonCancellable(async () => {
      if (cancelled) {
        const step = progress.lastStep;
        await recordActivities.setServerStatus({
          serverId: input.serverId,
          status: "ERROR",
          reason: `${progress.state.kind} cancelled${step ? ` during step ${step}` : ""}; run it again to finish`,
          actor: progress.actor,
          onlyFrom: [...busyStatuses],
        });
        await recordActivities.finishOperation({
          operationId: input.operationId,
          status: "CANCELLED",
          error: step ? `cancelled during step ${step}` : "cancelled",
          result: progress.summary(),
        });
        return;
      }
      const type = failureType(error);
      if (options.markServerOnFailure && type !== SshErrorType.HostKeyMismatch && type !== FailureType.ServerNotFound) {
        const unreachable = type !== undefined && unreachableErrorTypes.includes(type);
        await recordActivities.setServerStatus({
          serverId: input.serverId,
          status: unreachable ? "UNREACHABLE" : "ERROR",
          reason: unreachable ? `SSH failed after retries: ${message}` : `${progress.state.kind} failed: ${message}`,
          actor: progress.actor,
        });
      }
      await recordActivities.finishOperation({
        operationId: input.operationId,
        status: "FAILED",
        error: message,
        result: progress.summary(),
      });
    });
    progress.finish();
    throw error;
  }
}
