import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { createRateLimiter, type RateLimit } from "../core/rate-limit.js";
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
  // With checks, a plan logs in to every target.
  RolloutService.method.planRollout,
]);

/** Calls that log in to one server to look at it: a test, or AcceptHostKey's check of a key. */
const connectionTests: ReadonlySet<DescMethod> = new Set([ServerService.method.testServerConnection, ServerService.method.acceptHostKey]);

/** Streams that poll the database and Temporal while open: one count per owner. */
const watches: ReadonlySet<DescMethod> = new Set([OperationService.method.watchOperation, RolloutService.method.watchRollout]);

function bucket(what: string, limit: RateLimit, variables: string) {
  const limiter = createRateLimiter(limit);
  return (ownerId: string) => {
    const waitMs = limiter.take(ownerId);
    if (waitMs === 0) return;
    throw new ConnectError(
      `rate limit of ${what} reached: ${limit.burst} at once, then ${limit.perMinute} per minute per owner (${variables}); retry in ${Math.ceil(waitMs / 1000)} s`,
      Code.ResourceExhausted,
    );
  };
}

/**
 * Per-owner limits, applied before the handler runs: open WatchOperation streams
 * (each polls the database and Temporal) and token buckets on connection tests,
 * provisioning starts and notification channel tests (each sends a request to a
 * URL the owner chose). Each owner has its own counters. In this process'
 * memory: with several API processes, each allows this much.
 */
export function ownerLimitsInterceptor(limits: EdgeLimits): Interceptor {
  const connectionTest = bucket(
    "connection tests (TestServerConnection, AcceptHostKey)",
    limits.connectionTests,
    "CONNECTION_TEST_BURST, CONNECTION_TESTS_PER_MINUTE",
  );
  const provisioningStart = bucket("provisioning starts", limits.provisioningStarts, "PROVISIONING_BURST, PROVISIONING_STARTS_PER_MINUTE");
  const notificationTest = bucket(
    "notification channel tests",
    limits.notificationTests,
    "NOTIFICATION_TEST_BURST, NOTIFICATION_TESTS_PER_MINUTE",
  );
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
    if (connectionTests.has(req.method)) connectionTest(owner.id);
    else if (provisioningStarts.has(req.method)) provisioningStart(owner.id);
    else if (req.method === NotificationService.method.testNotificationChannel) notificationTest(owner.id);
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
