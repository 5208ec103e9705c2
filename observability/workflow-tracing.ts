import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from "@temporalio/interceptors-opentelemetry/lib/workflow/index.js";
import type { WorkflowInterceptorsFactory } from "@temporalio/workflow";

/**
 * Workflow spans (sandbox side, only bundled when tracing is on): the run continues
 * the starter's trace from its headers; each activity it schedules is a child span
 * whose context goes to the activity in its headers. Spans leave through the exporter sink.
 */
export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [new OpenTelemetryInboundInterceptor()],
  outbound: [new OpenTelemetryOutboundInterceptor()],
  internals: [new OpenTelemetryInternalsInterceptor()],
});
