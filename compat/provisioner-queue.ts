import { eq } from "drizzle-orm";
import { Redis } from "ioredis";
import { z } from "zod";
import { AppError } from "../core/errors.js";
import { errorSummary, log } from "../core/log.js";
import type { OperationKind } from "../core/operations.js";
import { startServerOperation, type WorkflowGateway } from "../core/provisioning.js";
import type { Database } from "../db/client.js";
import { servers } from "../db/schema.js";
import { failureMessage } from "../workflows/failure-types.js";

/**
 * Seed compatibility: producers of the Python provisioner still push
 * `{server_handle, force_reinstall, is_recovery}` onto the Redis list
 * `provisioner:queue`. Each message becomes the same workflow the API starts;
 * the outcome is pushed onto `provisioner:results`. Messages are moved to a
 * processing list while they run, so a crash re-queues them (at least once;
 * a repeated message attaches to the running workflow).
 */
export const QUEUE = "provisioner:queue";
export const PROCESSING = "provisioner:processing";
export const RESULTS = "provisioner:results";

const messageSchema = z.object({
  server_handle: z.string().min(1, "is required"),
  force_reinstall: z.boolean().optional().default(false),
  is_recovery: z.boolean().optional().default(false),
});

export interface QueueResult {
  server_handle: string | null;
  status: "success" | "failed" | "rejected";
  kind?: OperationKind;
  operation_id?: string;
  workflow_id?: string;
  error?: string;
  finished_at: string;
}

async function resolveServer(db: Database, handle: string) {
  // A handle is the server's id; names are unique per owner only, so a name must match exactly one server.
  const byId = /^[0-9a-f-]{36}$/i.test(handle) ? await db.select().from(servers).where(eq(servers.id, handle.toLowerCase())) : [];
  const rows = byId.length > 0 ? byId : await db.select().from(servers).where(eq(servers.name, handle)).limit(2);
  if (rows.length !== 1)
    throw AppError.invalid("server_handle", rows.length === 0 ? "no such server" : "names more than one server: use the id");
  return rows[0] as typeof servers.$inferSelect;
}

export interface QueueConsumer {
  stop(): Promise<void>;
}

export function startProvisionerQueue(options: { redisUrl: string; db: Database; workflows: WorkflowGateway }): QueueConsumer {
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: false });
  const blocking = redis.duplicate();
  let stopping = false;
  const inFlight = new Set<Promise<void>>();

  const finish = async (raw: string, result: QueueResult) => {
    await redis.multi().rpush(RESULTS, JSON.stringify(result)).lrem(PROCESSING, 1, raw).exec();
  };

  const handle = async (raw: string) => {
    let serverHandle: string | null = null;
    try {
      const parsed = messageSchema.safeParse(JSON.parse(raw));
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw AppError.invalid(String(issue?.path[0] ?? "message"), issue?.message ?? "is invalid");
      }
      serverHandle = parsed.data.server_handle;
      const server = await resolveServer(options.db, serverHandle);
      const kind: OperationKind = parsed.data.force_reinstall ? "reinstall" : parsed.data.is_recovery ? "recovery" : "bootstrap";
      const { operation, handle: workflow } = await startServerOperation(
        options.db,
        options.workflows,
        { id: server.ownerId, name: "" },
        server.id,
        kind,
      );
      try {
        await workflow.result();
        await finish(raw, {
          server_handle: serverHandle,
          status: "success",
          kind,
          operation_id: operation.id,
          workflow_id: operation.workflowId,
          finished_at: new Date().toISOString(),
        });
      } catch (error) {
        await finish(raw, {
          server_handle: serverHandle,
          status: "failed",
          kind,
          operation_id: operation.id,
          workflow_id: operation.workflowId,
          error: failureMessage(error),
          finished_at: new Date().toISOString(),
        });
      }
    } catch (error) {
      const message = error instanceof SyntaxError ? "message is not JSON" : error instanceof AppError ? error.message : "internal error";
      if (!(error instanceof AppError) && !(error instanceof SyntaxError))
        log.error("provisioner queue message failed", errorSummary(error));
      await finish(raw, { server_handle: serverHandle, status: "rejected", error: message, finished_at: new Date().toISOString() });
    }
  };

  const loop = async () => {
    // Messages left in the processing list by a previous process go back to the queue first.
    while ((await redis.lmove(PROCESSING, QUEUE, "RIGHT", "LEFT")) !== null) {}
    while (!stopping) {
      const raw = await blocking.blmove(QUEUE, PROCESSING, "LEFT", "RIGHT", 1).catch((error) => {
        if (!stopping) log.warn("provisioner queue: redis error", errorSummary(error));
        return null;
      });
      if (raw === null) continue;
      const task = handle(raw)
        .catch((error) => log.warn("provisioner queue: result not recorded; the message stays in the processing list", errorSummary(error)))
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
    }
  };
  const running = loop();
  log.info("consuming the seed provisioner queue", { queue: QUEUE });

  return {
    async stop() {
      stopping = true;
      await running.catch(() => undefined);
      blocking.disconnect();
      // Unfinished messages stay in the processing list and are re-queued at the next start.
      redis.disconnect();
    },
  };
}
