import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { Redis } from "ioredis";
import { z } from "zod";
import { ownerNamed } from "../core/inventory/owners.js";
import { findOwnerServerByHandle } from "../core/inventory/servers.js";
import { AppError } from "../core/kernel/errors.js";
import type { OperationKind } from "../core/kernel/kinds.js";
import { errorSummary, log } from "../core/kernel/log.js";
import { hasUnsafeCharacters } from "../core/kernel/text.js";
import { newestOperationStart, newestOperationStartedAfter } from "../core/operations/operations.js";
import { startSystemServerOperation, type WorkflowGateway } from "../core/operations/provisioning.js";
import type { Database } from "../db/client.js";
import { failureMessage } from "../workflows/contract.js";
import { type Claim, type InFlightClaim, messageClaims, messageIdentity, messageKeyOf, type QueueResult } from "./queue-claims.js";
import { processingListOf, workerRegistry } from "./queue-workers.js";

export type { QueueResult } from "./queue-claims.js";
export { processingListOf } from "./queue-workers.js";

/**
 * Seed compatibility: producers of the Python provisioner still push
 * `{server_handle, force_reinstall, is_recovery}` onto the Redis list
 * `provisioner:queue`. Each message becomes the same workflow the API starts,
 * for servers of one configured owner only; the outcome is pushed onto
 * `provisioner:results`.
 *
 * Each worker moves the messages it takes into its own processing list and keeps
 * a heartbeat key alive; a live worker puts a dead worker's list back on the
 * queue. Each message (by identity, see queue-claims.ts) is processed at most
 * once: a copy of a message in flight waits for it, and a copy of a finished one
 * is answered with the earlier result.
 */
export const QUEUE = "provisioner:queue";
export const RESULTS = "provisioner:results";

const messageSchema = z.object({
  server_handle: z
    .string()
    .min(1, "is required")
    .max(253, "must be at most 253 characters")
    .refine((v) => !hasUnsafeCharacters(v), "must not contain control characters"),
  force_reinstall: z.boolean().optional().default(false),
  is_recovery: z.boolean().optional().default(false),
  message_id: z
    .string()
    .min(1)
    .max(128, "must be at most 128 characters")
    .refine((v) => !hasUnsafeCharacters(v), "must not contain control characters")
    .optional(),
});

/** A handle is the id or the name of one of the configured owner's servers; other owners' servers do not exist here. */
async function resolveServer(db: Database, ownerName: string, handle: string) {
  const server = await findOwnerServerByHandle(db, ownerName, handle);
  if (!server) throw AppError.invalid("server_handle", "no such server");
  return server;
}

export interface QueueOptions {
  redisUrl: string;
  db: Database;
  workflows: WorkflowGateway;
  /** Name of the owner whose servers messages may name. */
  ownerName: string;
  /** How long a finished message's result answers copies of it. */
  dedupeSeconds: number;
  /** A worker silent this long is dead and its in-flight messages are reclaimed (default 30). */
  heartbeatTtlSeconds?: number;
  /** Messages handled at once by one worker (default 100). */
  maxInFlight?: number;
}

export interface QueueConsumer {
  readonly workerId: string;
  /** Resolves once the worker is registered and has reclaimed dead workers' messages. */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function startProvisionerQueue(options: QueueOptions): QueueConsumer {
  const workerId = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const processing = processingListOf(workerId);
  const ttl = options.heartbeatTtlSeconds ?? 30;
  const maxInFlight = options.maxInFlight ?? 100;
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: false });
  const blocking = redis.duplicate();
  const registry = workerRegistry(redis, workerId, ttl);
  const claims = messageClaims(redis, registry, workerId);
  let stopping = false;
  let signalStop: () => void = () => undefined;
  const stopSignal = new Promise<void>((resolve) => {
    signalStop = resolve;
  });
  const inFlight = new Set<Promise<void>>();

  const answer = async (raw: string, result: QueueResult, identity?: string) => {
    const tx = redis.multi();
    if (identity)
      tx.set(messageKeyOf(identity), JSON.stringify({ state: "finished", result } satisfies Claim), "EX", options.dedupeSeconds);
    await tx.rpush(RESULTS, JSON.stringify(result)).lrem(processing, 1, raw).exec();
  };

  /** Runs (or, taken over, resumes) a claimed message to its result. */
  const run = async (raw: string, serverHandle: string, identity: string, claim: InFlightClaim, stored: string) => {
    let started: Extract<Claim, { state: "started" }>;
    if (claim.state === "started") started = claim;
    else {
      // An operation of this kind started after the claim was taken: the one a dead claimer started.
      const adopted = await newestOperationStartedAfter(options.db, claim.server_id, claim.kind, claim.after);
      const operation =
        adopted ?? (await startSystemServerOperation(options.db, options.workflows, claim.server_id, claim.kind, "compat_queue")).operation;
      started = { ...claim, state: "started", operation_id: operation.id, workflow_id: operation.workflowId, run_id: operation.runId };
      await claims.advance(identity, stored, started);
    }
    const base = { server_handle: serverHandle, kind: started.kind, operation_id: started.operation_id, workflow_id: started.workflow_id };
    try {
      await options.workflows.client.workflow.getHandle(started.workflow_id, started.run_id ?? undefined).result();
      await answer(raw, { ...base, status: "success", finished_at: new Date().toISOString() }, identity);
    } catch (error) {
      await answer(raw, { ...base, status: "failed", error: failureMessage(error), finished_at: new Date().toISOString() }, identity);
    }
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
      const server = await resolveServer(options.db, options.ownerName, serverHandle);
      const kind: OperationKind = parsed.data.force_reinstall ? "reinstall" : parsed.data.is_recovery ? "recovery" : "bootstrap";
      const identity = messageIdentity(raw, parsed.data.message_id);
      const after = await newestOperationStart(options.db, server.id);
      for (;;) {
        const claim = await claims.acquire(identity, { state: "claimed", worker: workerId, server_id: server.id, kind, after });
        if ("finished" in claim) return await answer(raw, claim.finished);
        if ("mine" in claim) return await run(raw, serverHandle, identity, claim.mine, claim.stored);
        // A copy of a message another live worker (or this one) is running: its result answers this copy too.
        if (stopping) return;
        await sleep(1000);
      }
    } catch (error) {
      // Stopped (the connection is gone): the message stays in this worker's list, for a live worker to take over.
      if (stopping) return;
      const message = error instanceof SyntaxError ? "message is not JSON" : error instanceof AppError ? error.message : "internal error";
      if (!(error instanceof AppError) && !(error instanceof SyntaxError))
        log.error("provisioner queue message failed", errorSummary(error));
      await answer(raw, { server_handle: serverHandle, status: "rejected", error: message, finished_at: new Date().toISOString() });
    }
  };

  const keepAlive = async () => {
    await registry.beat();
    const reclaimed = await registry.reclaimDead(QUEUE);
    if (reclaimed > 0) log.info("provisioner queue: reclaimed a dead worker's messages", { messages: reclaimed });
  };
  const timer = setInterval(
    () => void keepAlive().catch((error) => log.warn("provisioner queue: heartbeat failed", errorSummary(error))),
    (ttl * 1000) / 3,
  );

  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  const loop = async () => {
    await keepAlive().catch((error) => log.warn("provisioner queue: heartbeat failed", errorSummary(error)));
    const owner = await ownerNamed(options.db, options.ownerName);
    if (!owner) log.warn("REDIS_QUEUE_OWNER names no owner yet: every message is rejected until it exists", { owner: options.ownerName });
    markReady();
    while (!stopping) {
      if (inFlight.size >= maxInFlight) {
        await Promise.race([...inFlight, stopSignal]);
        continue;
      }
      const raw = await blocking.blmove(QUEUE, processing, "LEFT", "RIGHT", 1).catch((error) => {
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
  const running = loop().finally(markReady);
  log.info("consuming the seed provisioner queue", { queue: QUEUE, worker: workerId, owner: options.ownerName });

  return {
    workerId,
    ready,
    async stop() {
      stopping = true;
      signalStop();
      clearInterval(timer);
      await running.catch(() => undefined);
      // Unfinished messages stay in this worker's processing list; without the heartbeat, a live worker takes them over.
      await registry.leave().catch(() => undefined);
      blocking.disconnect();
      redis.disconnect();
    },
  };
}
