import { CancellationScope, isCancellation } from "@temporalio/workflow";
import type { OperationInput } from "./definitions.js";
import { failureMessage, failureType, unreachableErrorTypes } from "./failure-types.js";
import type { ProgressTracker } from "./progress.js";
import { recordActivities } from "./proxies.js";

/**
 * The frame every server operation runs in: the operation row is finished exactly
 * once, and a failure leaves the server in a status that says why
 * (UNREACHABLE after SSH retries, HOSTKEY_MISMATCH set by the SSH layer, ERROR otherwise).
 */
export async function runOperation<T>(
  input: OperationInput,
  progress: ProgressTracker,
  body: () => Promise<T>,
  options: { markServerOnFailure: boolean } = { markServerOnFailure: true },
): Promise<T> {
  if (input.nested) return body();
  try {
    const result = await body();
    await recordActivities.finishOperation({ operationId: input.operationId, status: "SUCCEEDED", result: progress.summary() });
    progress.finish();
    return result;
  } catch (error) {
    const message = failureMessage(error);
    await CancellationScope.nonCancellable(async () => {
      if (isCancellation(error)) {
        await recordActivities.finishOperation({
          operationId: input.operationId,
          status: "CANCELLED",
          error: "cancelled",
          result: progress.summary(),
        });
        return;
      }
      const type = failureType(error);
      if (options.markServerOnFailure && type !== "HostKeyMismatch" && type !== "ServerNotFound") {
        const unreachable = type !== undefined && unreachableErrorTypes.includes(type);
        await recordActivities.setServerStatus({
          serverId: input.serverId,
          status: unreachable ? "UNREACHABLE" : "ERROR",
          reason: unreachable ? `SSH failed after retries: ${message}` : `${progress.state.kind} failed: ${message}`,
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
