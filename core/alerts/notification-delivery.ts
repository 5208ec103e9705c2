import { eq, sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { notificationDeliveries } from "../../db/schema.js";
import { errorSummary, log } from "../kernel/log.js";
import type { CredentialsCipher } from "../security/credentials-cipher.js";
import type { NetworkPolicy } from "../security/network-policy.js";
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
  /** At most this many deliveries claimed per pass (default: as many as the in-flight share leaves free). */
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
  ownerId: string;
  attempts: number;
  message: Record<string, unknown>;
  channelId: string;
  kind: string;
  envelope: string;
};

export interface DeliveryCounts {
  delivered: number;
  failed: number;
}

/**
 * The deliveries this process has in flight, per owner. A receiver that never answers holds a
 * delivery until the request deadline; with a share per owner, one organization's hanging
 * channels hold at most `perOwner` sends while everyone else's go out beside them.
 */
export class DeliveriesInFlight {
  private readonly byOwner = new Map<string, number>();
  private readonly sends = new Set<Promise<unknown>>();
  private count = 0;

  constructor(
    readonly perOwner = 4,
    readonly total = 64,
  ) {}

  /** Owner id → deliveries in flight, for the claim to leave out what an owner already holds. */
  held(): Record<string, number> {
    return Object.fromEntries(this.byOwner);
  }

  get free(): number {
    return Math.max(0, this.total - this.count);
  }

  track<T>(ownerId: string, send: Promise<T>): Promise<T> {
    this.count += 1;
    this.byOwner.set(ownerId, (this.byOwner.get(ownerId) ?? 0) + 1);
    const tracked = send.finally(() => {
      this.count -= 1;
      const left = (this.byOwner.get(ownerId) ?? 1) - 1;
      if (left > 0) this.byOwner.set(ownerId, left);
      else this.byOwner.delete(ownerId);
      this.sends.delete(tracked);
    });
    this.sends.add(tracked);
    return tracked;
  }

  /** Resolves once every send started so far has ended (each ends by its request deadline). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.sends]);
  }
}

/**
 * Claims due deliveries with a lease (SKIP LOCKED, so two processes never take one row) and
 * starts sending them outside any transaction; the returned promise resolves once they are sent
 * and their outcomes recorded. Fair: each owner's oldest due deliveries, at most its free share
 * (`perOwner` less what it has in flight here), taken round-robin across owners up to the free
 * total. A sender that dies holding a lease leaves the row to be taken again when the lease
 * ends: at least once, never twice at a time.
 */
export async function startDueDeliveries(
  settings: DeliverySettings,
  inFlight: DeliveriesInFlight,
): Promise<{ sent: Promise<DeliveryCounts> }> {
  const { db } = settings;
  const free = Math.min(inFlight.free, settings.batchSize ?? inFlight.total);
  if (free === 0) return { sent: Promise.resolve({ delivered: 0, failed: 0 }) };
  const leaseMs = settings.timeoutMs * 2 + 5_000;
  const held = JSON.stringify(inFlight.held());
  const due = sql`status = 'pending' and next_attempt_at <= now() and (lease_until is null or lease_until <= now())`;
  const result = await db.execute(sql`
    update notification_deliveries d
    set lease_until = now() + make_interval(secs => ${leaseMs / 1000}), attempts = d.attempts + 1
    from notification_channels c
    where c.id = d.channel_id and d.id in (
      select pick.id
      from (select distinct owner_id from notification_deliveries where ${due}) o
      cross join lateral (
        select ranked.id, ranked.rank, ranked.next_attempt_at
        from (
          select mine.id, mine.next_attempt_at, row_number() over (order by mine.next_attempt_at, mine.id) as rank
          from (
            select id, next_attempt_at from notification_deliveries
            where owner_id = o.owner_id and ${due}
            order by next_attempt_at
            limit ${inFlight.perOwner}
            for update skip locked) mine) ranked
        where ranked.rank <= ${inFlight.perOwner} - coalesce((${held}::jsonb ->> o.owner_id::text)::int, 0)) pick
      order by pick.rank, pick.next_attempt_at
      limit ${free})
    returning d.id, d.owner_id as "ownerId", d.attempts, d.message, d.channel_id as "channelId", c.kind, c.envelope`);
  const claimed = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as Claimed[];
  const counts: DeliveryCounts = { delivered: 0, failed: 0 };
  const sends = claimed.map((row) => inFlight.track(row.ownerId, sendClaimed(settings, row, counts)));
  // Wrapped: an async function returning the promise itself would wait for the sends.
  return { sent: Promise.all(sends).then(() => counts) };
}

/** Claims due deliveries and sends them, resolving once all are sent and recorded. */
export async function deliverDue(settings: DeliverySettings, inFlight = new DeliveriesInFlight()): Promise<DeliveryCounts> {
  return await (await startDueDeliveries(settings, inFlight)).sent;
}

async function sendClaimed(settings: DeliverySettings, row: Claimed, counts: DeliveryCounts): Promise<void> {
  const { db } = settings;
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
    counts.delivered += 1;
    await db
      .update(notificationDeliveries)
      .set({ status: "delivered", deliveredAt: sql`now()`, leaseUntil: null, lastError: null })
      .where(eq(notificationDeliveries.id, row.id));
    return;
  }
  const givesUp = row.attempts >= settings.maxAttempts;
  if (givesUp) counts.failed += 1;
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
}
