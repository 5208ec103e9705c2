import { Client, type ClientInterceptors, Connection } from "@temporalio/client";
import { tracingPipeline } from "../observability/tracing.js";

export async function connectClient(address: string, namespace: string): Promise<Client> {
  const connection = await Connection.connect({ address });
  return new Client({ connection, namespace, interceptors: clientInterceptors() });
}

/** With tracing on, a workflow start (signal, query) is a span whose context the workflow continues through its headers. */
export function clientInterceptors(): ClientInterceptors | undefined {
  const tracing = tracingPipeline();
  return tracing ? { workflow: [new tracing.temporal.OpenTelemetryWorkflowClientInterceptor()] } : undefined;
}
