import assert from "node:assert/strict";
import type { Client as ConnectClient } from "@connectrpc/connect";
import type { Operation, OperationService } from "../../gen/axion/infrastructure/v1/operation_service_pb.js";

/** Follows WatchOperation to the end and returns the last state it streamed. */
export async function watchUntilEnd(operations: ConnectClient<typeof OperationService>, operationId: string): Promise<Operation> {
  let last: Operation | undefined;
  for await (const update of operations.watchOperation({ id: operationId })) last = update.operation;
  assert.ok(last, "WatchOperation streamed at least once");
  return last;
}
