import type { Context } from "@temporalio/activity";
import { defaultPayloadConverter } from "@temporalio/common";
import type { ActivityInterceptors } from "@temporalio/worker";
import { withLogContext } from "../core/kernel/log.js";
import { OPERATION_ID_HEADER } from "./headers.js";

/**
 * Every line an activity writes carries its operation id (from the header its
 * workflow set), workflow id, run id and activity type: our own lines through
 * the log context, the SDK's lines about the activity through its log attributes.
 */
export function activityLogContext(ctx: Context): ActivityInterceptors {
  let operationId: string | undefined;
  return {
    inbound: {
      execute(input, next) {
        const header = input.headers[OPERATION_ID_HEADER];
        const value = header ? defaultPayloadConverter.fromPayload(header) : undefined;
        if (typeof value === "string") operationId = value;
        const { workflowExecution, activityType } = ctx.info;
        return withLogContext(
          { operationId, workflowId: workflowExecution?.workflowId, runId: workflowExecution?.runId, activityType },
          () => next(input),
        );
      },
    },
    outbound: {
      getLogAttributes: (input, next) => next(operationId ? { ...input, operationId } : input),
    },
  };
}
