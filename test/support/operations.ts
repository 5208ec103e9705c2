import assert from "node:assert/strict";
import type { Client as ConnectClient } from "@connectrpc/connect";
import type { Client as TemporalClient } from "@temporalio/client";
import type { Operation, OperationService } from "../../gen/axion/infrastructure/v1/operation_service_pb.js";
import { progressQuery } from "../../workflows/definitions.js";

/** Follows WatchOperation to the end and returns the last state it streamed. */
export async function watchUntilEnd(operations: ConnectClient<typeof OperationService>, operationId: string): Promise<Operation> {
  let last: Operation | undefined;
  for await (const update of operations.watchOperation({ id: operationId })) last = update.operation;
  assert.ok(last, "WatchOperation streamed at least once");
  return last;
}

/** Polls the workflow's progress query until `step` is the current one. */
export async function waitForStep(client: TemporalClient, workflowId: string, step: string, timeoutMs = 120_000): Promise<void> {
  const handle = client.workflow.getHandle(workflowId);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const progress = await handle.query(progressQuery).catch(() => undefined);
    if (progress?.currentStep === step) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${workflowId} never reached ${step}`);
}
