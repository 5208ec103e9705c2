import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { createRateLimiter, type RateLimit, type RateLimiter } from "../core/kernel/rate-limit.js";
import { AgentService } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { NotificationService } from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import { OperationService } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { RolloutService } from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { ownerKey } from "./context.js";
import type { EdgeLimits } from "./edge-limits.js";

/** Calls that make the worker open SSH connections or start workflows. */
const provisioningStarts: ReadonlySet<DescMethod> = new Set([
  ServerService.method.configureServer,
  ServerService.method.setupDeployKey,
  ServerService.method.recoverServer,
  ServerService.method.reinstallServer,
  AgentService.method.installAgent,
  RolloutService.method.startRollout,
  // With checks, a plan logs in to every target (and is charged per server to the plan checks too).
  RolloutService.method.planRollout,
]);

/** Calls that log in to one server to look at it: a test, or AcceptHostKey's check of a key. */
const connectionTests: ReadonlySet<DescMethod> = new Set([ServerService.method.testServerConnection, ServerService.method.acceptHostKey]);
/** Calls that may parse (decrypt) a private key in the key-parsing threads every owner shares. */
const serverWrites: ReadonlySet<DescMethod> = new Set([ServerService.method.createServer, ServerService.method.updateServer]);

/** Streams that poll the database and Temporal while open: one count per owner. */
const watches: ReadonlySet<DescMethod> = new Set([OperationService.method.watchOperation, RolloutService.method.watchRollout]);

/** Each per-owner token bucket, declared once: what it counts and the variables that set it. */
const budgetNames = {
  connectionTests: { what: "connection tests", variables: "CONNECTION_TEST_BURST, CONNECTION_TESTS_PER_MINUTE" },
  provisioningStarts: { what: "provisioning starts", variables: "PROVISIONING_BURST, PROVISIONING_STARTS_PER_MINUTE" },
  notificationTests: { what: "notification channel tests", variables: "NOTIFICATION_TEST_BURST, NOTIFICATION_TESTS_PER_MINUTE" },
  serverWrites: { what: "server creates and updates", variables: "SERVER_WRITE_BURST, SERVER_WRITES_PER_MINUTE" },
  planChecks: { what: "plan checks (one per server planned)", variables: "PLAN_CHECK_BURST, PLAN_CHECKS_PER_MINUTE" },
  providerChecks: { what: "provider checks", variables: "PROVIDER_CHECK_BURST, PROVIDER_CHECKS_PER_MINUTE" },
} as const;

export type BudgetName = keyof typeof budgetNames;

/** Per-owner budgets of work on shared machinery, one token bucket per owner per budget. */
export interface OwnerBudgets {
  /**
   * Takes `units` (servers probed or planned; default 1) from the owner's budget, all or
   * nothing, before any of the work starts; else ResourceExhausted naming the limit.
   */
  charge(ownerId: string, budget: BudgetName, units?: number): void;
}

export function createOwnerBudgets(limits: EdgeLimits): OwnerBudgets {
  const limiters = new Map<BudgetName, { limit: RateLimit; limiter: RateLimiter }>();
  for (const name of Object.keys(budgetNames) as BudgetName[]) {
    limiters.set(name, { limit: limits[name], limiter: createRateLimiter(limits[name]) });
  }
  return {
    charge(ownerId, budget, units = 1) {
      const { limit, limiter } = limiters.get(budget) as { limit: RateLimit; limiter: RateLimiter };
      const { what, variables } = budgetNames[budget];
      const waitMs = limiter.take(ownerId, units);
      if (waitMs === 0) return;
      const rate = `${limit.burst} at once, then ${limit.perMinute} per minute per owner (${variables})`;
      if (!Number.isFinite(waitMs)) {
        throw new ConnectError(
          `rate limit of ${what}: this call needs ${units}, more than the ${rate} allows; narrow the target or raise the limit`,
          Code.ResourceExhausted,
        );
      }
      const needs = units === 1 ? "" : `this call needs ${units}; `;
      throw new ConnectError(
        `rate limit of ${what} reached: ${needs}${rate}; retry in ${Math.ceil(waitMs / 1000)} s`,
        Code.ResourceExhausted,
      );
    },
  };
}

/**
 * Per-owner limits, applied before the handler runs: open WatchOperation streams
 * (each polls the database and Temporal) and token buckets on connection tests,
 * provisioning starts, server writes (each may parse a key) and notification
 * channel tests (each sends a request to a URL the owner chose). Work whose size
 * is known only to the handler (servers in a rollout or plan) is charged there,
 * to the same `budgets`. Each owner has its own counters. In this process'
 * memory: with several API processes, each allows this much.
 */
export function ownerLimitsInterceptor(limits: EdgeLimits, budgets: OwnerBudgets = createOwnerBudgets(limits)): Interceptor {
  const openWatches = new Map<string, number>();

  const openWatch = (ownerId: string, signal: AbortSignal): (() => void) => {
    const open = openWatches.get(ownerId) ?? 0;
    if (open >= limits.watchStreamsPerOwner) {
      throw new ConnectError(
        `too many open watch streams (WatchOperation, WatchRollout): at most ${limits.watchStreamsPerOwner} per owner (WATCH_STREAMS_PER_OWNER); close one first`,
        Code.ResourceExhausted,
      );
    }
    openWatches.set(ownerId, open + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      signal.removeEventListener("abort", release);
      const left = (openWatches.get(ownerId) ?? 1) - 1;
      if (left > 0) openWatches.set(ownerId, left);
      else openWatches.delete(ownerId);
    };
    // A client that goes away may leave the stream's iterable unfinished.
    signal.addEventListener("abort", release);
    return release;
  };

  return (next) => async (req) => {
    const owner = req.contextValues.get(ownerKey);
    if (!owner) return next(req);
    if (connectionTests.has(req.method)) budgets.charge(owner.id, "connectionTests");
    else if (provisioningStarts.has(req.method)) budgets.charge(owner.id, "provisioningStarts");
    else if (serverWrites.has(req.method)) budgets.charge(owner.id, "serverWrites");
    else if (req.method === ServerService.method.planServer) budgets.charge(owner.id, "planChecks");
    else if (req.method === NotificationService.method.testNotificationChannel) budgets.charge(owner.id, "notificationTests");
    if (!watches.has(req.method)) return next(req);

    const release = openWatch(owner.id, req.signal);
    try {
      const res = await next(req);
      if (!res.stream) {
        release();
        return res;
      }
      return { ...res, message: releasedAtEnd(res.message, release) };
    } catch (error) {
      release();
      throw error;
    }
  };
}

async function* releasedAtEnd<T>(messages: AsyncIterable<T>, release: () => void): AsyncIterable<T> {
  try {
    yield* messages;
  } finally {
    release();
  }
}
