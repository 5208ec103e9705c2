import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { WorkerOptions } from "@temporalio/worker";
import { activityLogContext } from "./activity-log-context.js";
import { tracingPipeline } from "./tracing.js";

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The worker's interceptors and sinks: log context on workflows and activities
 * always; workflow and activity spans (and the sink that exports workflow spans) with tracing on.
 */
export function workerObservability(): Pick<WorkerOptions, "interceptors" | "sinks"> {
  const tracing = tracingPipeline();
  const otel = tracing?.temporal;
  if (!tracing || !otel)
    return { interceptors: { workflowModules: [join(here, "workflow-interceptors.ts")], activity: [activityLogContext] } };
  return {
    interceptors: {
      workflowModules: [join(here, "workflow-interceptors.ts"), join(here, "workflow-tracing.ts")],
      activity: [
        activityLogContext,
        (ctx) => ({
          inbound: new otel.OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new otel.OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
    sinks: { exporter: otel.makeWorkflowExporter(tracing.processor, tracing.resource) },
  };
}
