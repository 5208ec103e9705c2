import { type Config, loadConfig } from "../core/kernel/config.js";
import type { RateLimit } from "../core/kernel/rate-limit.js";

/** What one caller may cost the API before any work is done for it. */
export interface EdgeLimits {
  /** Largest request message after decompression (owner RPCs). */
  maxRequestBytes: number;
  /** A connection that has not said which protocol it speaks (its first bytes; HTTP/2: the preface) is closed. */
  firstByteTimeoutMs: number;
  /** HTTP/1.1: a request whose headers have not all arrived is answered 408. */
  headersTimeoutMs: number;
  /** A request (HTTP/1.1) or request stream (HTTP/2) not fully received is answered 408 / reset. Responses may last longer. */
  requestTimeoutMs: number;
  /** HTTP/1.1 keep-alive between requests; an HTTP/2 session with no open stream. */
  idleTimeoutMs: number;
  watchStreamsPerOwner: number;
  connectionTests: RateLimit;
  provisioningStarts: RateLimit;
  /** TestNotificationChannel: each one is a request from us to an owner-chosen URL. */
  notificationTests: RateLimit;
  /** CreateServer, UpdateServer: each may parse (decrypt) a private key in the shared key-parsing threads. */
  serverWrites: RateLimit;
  /** Plans, per server checked: each is a read-only login to that server. */
  planChecks: RateLimit;
  /** Calls to a VPS provider's API with an owner's provider account (ReinstallServer's checks). */
  providerChecks: RateLimit;
  /** Temporal queries in flight for one owner's rollout reads (GetRollout, WatchRollout, Pause/Resume/Abort answers). */
  rolloutQueriesPerOwner: number;
}

/** Agents send small messages; the HTTP/1.1 heartbeat fast path has the same bound. */
export const AGENT_MAX_REQUEST_BYTES = 64 * 1024;

export function edgeLimitsFromConfig(config: Config): EdgeLimits {
  return {
    maxRequestBytes: config.MAX_REQUEST_BYTES,
    firstByteTimeoutMs: config.HTTP_FIRST_BYTE_TIMEOUT_MS,
    headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    idleTimeoutMs: config.HTTP_IDLE_TIMEOUT_MS,
    watchStreamsPerOwner: config.WATCH_STREAMS_PER_OWNER,
    connectionTests: { burst: config.CONNECTION_TEST_BURST, perMinute: config.CONNECTION_TESTS_PER_MINUTE },
    provisioningStarts: { burst: config.PROVISIONING_BURST, perMinute: config.PROVISIONING_STARTS_PER_MINUTE },
    notificationTests: { burst: config.NOTIFICATION_TEST_BURST, perMinute: config.NOTIFICATION_TESTS_PER_MINUTE },
    serverWrites: { burst: config.SERVER_WRITE_BURST, perMinute: config.SERVER_WRITES_PER_MINUTE },
    planChecks: { burst: config.PLAN_CHECK_BURST, perMinute: config.PLAN_CHECKS_PER_MINUTE },
    providerChecks: { burst: config.PROVIDER_CHECK_BURST, perMinute: config.PROVIDER_CHECKS_PER_MINUTE },
    rolloutQueriesPerOwner: config.ROLLOUT_QUERIES_PER_OWNER,
  };
}

/** The documented defaults: core/kernel/config.ts is their one source. */
export const defaultEdgeLimits: EdgeLimits = edgeLimitsFromConfig(loadConfig({}));
