import { defaultPayloadConverter, type Headers, type Payload, type WorkflowInterceptorsFactory } from "@temporalio/workflow";
import { OPERATION_ID_HEADER } from "./headers.js";

function operationIdOf(payload: Payload | null | undefined): string | undefined {
  if (!payload) return undefined;
  try {
    const input = defaultPayloadConverter.fromPayload<{ operationId?: unknown }>(payload);
    return typeof input?.operationId === "string" ? input.operationId : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Workflow interceptors (run in the workflow sandbox, deterministic): an
 * operation workflow's id goes on its log lines and, as a header, to every
 * activity it schedules. One factory call per workflow run.
 */
export const interceptors: WorkflowInterceptorsFactory = () => {
  let operationId: string | undefined;
  const withHeader = <T extends { headers: Headers }>(input: T): T =>
    operationId
      ? { ...input, headers: { ...input.headers, [OPERATION_ID_HEADER]: defaultPayloadConverter.toPayload(operationId) } }
      : input;
  return {
    internals: [
      {
        // The first activation holds the input, before the SDK logs "Workflow started" (ahead of every inbound interceptor).
        activate(input, next) {
          const start = input.activation.jobs?.[0]?.initializeWorkflow;
          if (start) operationId = operationIdOf(start.arguments?.[0]);
          return next(input);
        },
      },
    ],
    outbound: [
      {
        scheduleActivity: (input, next) => next(withHeader(input)),
        scheduleLocalActivity: (input, next) => next(withHeader(input)),
        getLogAttributes: (input, next) => next(operationId ? { ...input, operationId } : input),
      },
    ],
  };
};
