import type { ServiceImpl } from "@connectrpc/connect";
import { WorkflowNotFoundError } from "@temporalio/client";
import { requireServer } from "../core/inventory/servers.js";
import { parsePageRequest } from "../core/kernel/pagination.js";
import { listServerOperations, type OperationRow, requireOperation } from "../core/operations/operations.js";
import { queryProgress, type WorkflowGateway } from "../core/operations/provisioning.js";
import { settleOperation } from "../core/operations/reconcile.js";
import type { Database } from "../db/client.js";
import type { OperationService } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { pauseUnlessDraining } from "./drain.js";
import { operationMessage } from "./operation-message.js";
import { requireOwner } from "./owner.js";
import { requireGateway } from "./server-service.js";

const WATCH_INTERVAL_MS = 500;

/** `draining` aborts when the API starts to drain: watches then end with Unavailable. */
export function operationService(
  db: Database,
  workflows: WorkflowGateway | undefined,
  draining?: AbortSignal,
): ServiceImpl<typeof OperationService> {
  const withProgress = async (row: OperationRow) =>
    operationMessage(row, row.status === "RUNNING" && workflows ? await queryProgress(workflows, row) : undefined);

  return {
    async getOperation(req, ctx) {
      return { operation: await withProgress(await requireOperation(db, requireOwner(ctx), req.id)) };
    },
    async listOperations(req, ctx) {
      const owner = requireOwner(ctx);
      const server = await requireServer(db, owner, req.serverId, "server_id");
      const page = await listServerOperations(db, owner, server.id, parsePageRequest(req.pageSize, req.pageToken));
      return { operations: page.items.map((row) => operationMessage(row)), nextPageToken: page.nextPageToken };
    },
    async *watchOperation(req, ctx) {
      const owner = requireOwner(ctx);
      let last = "";
      for (;;) {
        const row = await requireOperation(db, owner, req.id);
        const operation = await withProgress(row);
        const fingerprint = JSON.stringify({ s: operation.status, c: operation.currentStep, n: operation.steps.map((s) => s.status) });
        if (fingerprint !== last) {
          last = fingerprint;
          yield { operation };
        }
        if (row.status !== "RUNNING" || ctx.signal.aborted) return;
        await pauseUnlessDraining(WATCH_INTERVAL_MS, draining);
      }
    },
    async cancelOperation(req, ctx) {
      const owner = requireOwner(ctx);
      const row = await requireOperation(db, owner, req.id);
      if (row.status === "RUNNING") {
        const gateway = requireGateway(workflows);
        try {
          await gateway.client.workflow.getHandle(row.workflowId, row.runId ?? undefined).cancel();
        } catch (error) {
          if (!(error instanceof WorkflowNotFoundError)) throw error;
        }
        // A workflow that already ended (terminated, say) or never started cannot record its end: record what Temporal says.
        await settleOperation(db, gateway.client, row, { missingGraceMs: 0 });
      }
      return { operation: await withProgress(await requireOperation(db, owner, req.id)) };
    },
  };
}
