import type { Database } from "../../db/client.js";
import { errorSummary, log } from "../kernel/log.js";
import type { CredentialsCipher } from "../security/credentials-cipher.js";
import type { NetworkPolicy } from "../security/network-policy.js";
import { evaluateOutboxEvents, evaluateResourceAlerts, firePendingAlerts } from "./alert-evaluation.js";
import { pruneEndedAlerts } from "./alert-retention.js";
import type { AlertDefaults } from "./alert-rules.js";
import { DeliveriesInFlight, startDueDeliveries } from "./notification-delivery.js";

export interface AlertingOptions {
  db: Database;
  cipher: CredentialsCipher;
  networkPolicy: NetworkPolicy;
  graceSeconds: number;
  defaults: AlertDefaults;
  /** How often disk and memory rules read the samples (ALERT_EVALUATION_INTERVAL_SECONDS). */
  resourceIntervalSeconds: number;
  timeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  maxAttempts: number;
  /** Deliveries in flight at once per owner in this process (NOTIFICATION_DELIVERIES_PER_OWNER). */
  deliveriesPerOwner?: number;
  /** Deliveries in flight at once in this process, all owners together (NOTIFICATION_DELIVERIES_IN_FLIGHT). */
  deliveriesInFlight?: number;
  /** Pause between passes (events, grace, deliveries). */
  pollIntervalMs?: number;
  /** Ended alerts and their deliveries are kept this long (OUTBOX_RETENTION_HOURS); pruned once an hour. */
  retentionHours?: number;
  /** false: no background passes, only runOnce() (tests). */
  loop?: boolean;
}

export interface Alerting {
  /** One pass: read new outbox events, fire alerts past their grace period, evaluate resources when due, send due deliveries (resolves once they are sent). */
  runOnce(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The alerting loop of a worker process. All state is in PostgreSQL (alerts, deliveries, the
 * outbox's alerts_checked_at), so a restart continues where it stopped, and several processes
 * may run it: evaluation passes take a try-lock, deliveries are claimed with leases. The loop
 * does not wait for the deliveries it starts: a receiver that never answers holds its owner's
 * share of deliveries in flight until the request deadline, never the next pass.
 */
export function startAlerting(options: AlertingOptions): Alerting {
  const settings = { graceSeconds: options.graceSeconds, defaults: options.defaults };
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  let lastResourcePass = 0;
  let lastPrune = 0;
  let stopped = false;
  const inFlight = new DeliveriesInFlight(options.deliveriesPerOwner, options.deliveriesInFlight);

  const pass = async (waitForDeliveries: boolean) => {
    while ((await evaluateOutboxEvents(options.db, settings)) === 200) {}
    await firePendingAlerts(options.db, options.graceSeconds);
    if (Date.now() - lastResourcePass >= options.resourceIntervalSeconds * 1000) {
      lastResourcePass = Date.now();
      await evaluateResourceAlerts(options.db, settings);
    }
    const { sent } = await startDueDeliveries(options, inFlight);
    if (waitForDeliveries) await sent;
    if (Date.now() - lastPrune >= 3_600_000) {
      lastPrune = Date.now();
      await pruneEndedAlerts(options.db, options.retentionHours ?? 168);
    }
  };

  let queue: Promise<unknown> = Promise.resolve();
  const runPass = (waitForDeliveries: boolean) => {
    const once = () => pass(waitForDeliveries);
    const run = queue.then(once, once);
    queue = run.catch(() => {});
    return run;
  };

  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  const loop = () => {
    if (stopped) return;
    runPass(false)
      .then(() => {
        failures = 0;
      })
      .catch((error) => {
        failures += 1;
        log.warn("alerting pass failed, will retry", { failures, ...errorSummary(error) });
      })
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, failures > 0 ? Math.min(30_000, pollIntervalMs * 2 ** failures) : pollIntervalMs);
      });
  };
  if (options.loop !== false) timer = setTimeout(loop, 0);

  return {
    runOnce: () => runPass(true),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await queue;
      await inFlight.settled();
    },
  };
}
