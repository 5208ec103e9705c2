import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { notificationDeliveries } from "../db/schema.js";
import type { CredentialsCipher } from "./credentials-cipher.js";
import { errorSummary, log } from "./log.js";
import type { NetworkPolicy } from "./network-policy.js";
import { type PostOutcome, postNotification, signedHeaders } from "./notification-http.js";
import { type SendableChannel, sendable } from "./notifications.js";

export interface DeliverySettings {
  db: Database;
  cipher: CredentialsCipher;
  networkPolicy: NetworkPolicy;
  timeoutMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  maxAttempts: number;
  /** Deliveries sent at once per pass. */
  batchSize?: number;
}

/** Sends one message to one channel: webhooks signed (and with the dedupe id in a header), Slack as is. */
export async function sendToChannel(
  policy: NetworkPolicy,
  channel: SendableChannel,
  deliveryId: string,
  message: Record<string, unknown>,
  timeoutMs: number,
  /** Whose channel: its name is resolved as this owner's lookup. */
  owner?: string,
): Promise<PostOutcome> {
  const body = JSON.stringify(message);
  const headers = channel.kind === "webhook" ? { ...signedHeaders(channel.secrets.secret, body), "x-axion-delivery": deliveryId } : {};
  return postNotification(policy, channel.secrets.url, body, headers, timeoutMs, owner);
}

/** Before attempt n+1: doubling from the initial delay up to the maximum, with up to 25 % jitter against synchronised retries. */
export function retryDelayMs(settings: Pick<DeliverySettings, "retryInitialMs" | "retryMaxMs">, attempts: number): number {
  const base = Math.min(settings.retryMaxMs, settings.retryInitialMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(base * (1 + Math.random() * 0.25));
}

type Claimed = {
  id: string;
  attempts: number;
  message: Record<string, unknown>;
  channelId: string;
  ownerId: string;
  kind: string;
  envelope: string;
};

/**
 * Claims due deliveries with a lease (SKIP LOCKED, so two processes never take one row), sends
 * them outside any transaction, then records each outcome. A sender that dies holding a lease
 * leaves the row to be taken again when the lease ends: at least once, never twice at a time.
 */
export async function deliverDue(settings: DeliverySettings): Promise<{ delivered: number; failed: number }> {
  const { db } = settings;
  const leaseMs = settings.timeoutMs * 2 + 5_000;
  const result = await db.execute(sql`
    update notification_deliveries d
    set lease_until = now() + make_interval(secs => ${leaseMs / 1000}), attempts = d.attempts + 1
    from notification_channels c
    where c.id = d.channel_id and d.id in (
      select id from notification_deliveries
      where status = 'pending' and next_attempt_at <= now() and (lease_until is null or lease_until <= now())
      order by next_attempt_at
      limit ${settings.batchSize ?? 20}
      for update skip locked)
    returning d.id, d.attempts, d.message, d.channel_id as "channelId", c.owner_id as "ownerId", c.kind, c.envelope`);
  const claimed = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as Claimed[];
  let delivered = 0;
  let failed = 0;
  await Promise.all(
    claimed.map(async (row) => {
      let outcome: PostOutcome;
      try {
        const channel = sendable(settings.cipher, { id: row.channelId, kind: row.kind as SendableChannel["kind"], envelope: row.envelope });
        const message = typeof row.message === "string" ? JSON.parse(row.message) : row.message;
        outcome = await sendToChannel(settings.networkPolicy, channel, row.id, message, settings.timeoutMs, row.ownerId);
      } catch (error) {
        log.warn("notification: send failed unexpectedly", { deliveryId: row.id, ...errorSummary(error) });
        outcome = { delivered: false, httpStatus: 0, error: "internal error while sending" };
      }
      if (outcome.delivered) {
        delivered += 1;
        await db
          .update(notificationDeliveries)
          .set({ status: "delivered", deliveredAt: sql`now()`, leaseUntil: null, lastError: null })
          .where(eq(notificationDeliveries.id, row.id));
        return;
      }
      const givesUp = row.attempts >= settings.maxAttempts;
      if (givesUp) failed += 1;
      const delay = retryDelayMs(settings, row.attempts);
      await db
        .update(notificationDeliveries)
        .set({
          status: givesUp ? "failed" : "pending",
          leaseUntil: null,
          lastError: outcome.error ?? null,
          nextAttemptAt: sql`now() + make_interval(secs => ${delay / 1000})`,
        })
        .where(eq(notificationDeliveries.id, row.id));
      log.warn("notification not delivered", {
        deliveryId: row.id,
        channelId: row.channelId,
        attempt: row.attempts,
        httpStatus: outcome.httpStatus,
        error: outcome.error,
        ...(givesUp ? { givingUp: true } : { retryInMs: delay }),
      });
    }),
  );
  return { delivered, failed };
}
