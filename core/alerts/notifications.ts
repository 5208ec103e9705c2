import { and, asc, count, eq } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { notificationChannels, owners } from "../../db/schema.js";
import type { Owner } from "../inventory/owners.js";
import { isUniqueViolation } from "../kernel/db-errors.js";
import { AppError } from "../kernel/errors.js";
import { requireId } from "../kernel/ids.js";
import { type NotificationChannelKind, notificationChannelKinds } from "../kernel/kinds.js";
import { cleanText, isValidHost, parseInput, resourceName } from "../kernel/validation.js";
import type { CredentialsCipher } from "../security/credentials-cipher.js";
import type { NetworkPolicy } from "../security/network-policy.js";

/** A channel as the API may show it: no URL path, no secret. */
export type NotificationChannelView = Omit<typeof notificationChannels.$inferSelect, "envelope" | "keyId">;
type ChannelRow = typeof notificationChannels.$inferSelect;

/** What only the sender sees, decrypted in this process and never logged. */
export interface ChannelSecrets {
  url: string;
  /** Webhook signing key; empty for Slack. */
  secret: string;
}

export interface NotificationDeps {
  db: Database;
  cipher: CredentialsCipher;
  networkPolicy: NetworkPolicy;
  maxChannelsPerOwner: number;
}

const MAX_URL = 2048;

/** An http(s) URL without user info whose host is a valid name or address; the URL object on success. */
const webhookUrl = cleanText(MAX_URL)
  .min(1, "is required")
  .transform((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: "custom", message: "must be an absolute http:// or https:// URL" });
      return z.NEVER;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      ctx.addIssue({ code: "custom", message: "must be an http:// or https:// URL" });
      return z.NEVER;
    }
    if (url.username !== "" || url.password !== "") {
      ctx.addIssue({ code: "custom", message: "must not contain user info (user:password@)" });
      return z.NEVER;
    }
    if (!isValidHost(urlHost(url))) {
      ctx.addIssue({ code: "custom", message: "must name a valid host" });
      return z.NEVER;
    }
    return url;
  });

const printableSecret = z
  .string()
  .min(16, "must be 16-256 characters")
  .max(256, "must be 16-256 characters")
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");

const createSchema = z
  .object({
    name: resourceName,
    kind: z.enum(notificationChannelKinds, {
      error: "must be NOTIFICATION_CHANNEL_KIND_WEBHOOK or NOTIFICATION_CHANNEL_KIND_SLACK",
    }),
    url: webhookUrl,
    secret: z.string(),
  })
  .superRefine((v, ctx) => {
    if (v.kind === "webhook") {
      const checked = printableSecret.safeParse(v.secret);
      if (!checked.success) ctx.addIssue({ code: "custom", path: ["secret"], message: checked.error.issues[0]?.message ?? "is invalid" });
    } else if (v.secret !== "") {
      ctx.addIssue({ code: "custom", path: ["secret"], message: "must be empty for a Slack channel (Slack does not verify signatures)" });
    }
  });

/** The URL's host as a resolver takes it: IPv6 without brackets. */
export function urlHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

/** scheme://host:port, what responses show of a URL. */
function targetOf(url: URL): string {
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return `${url.protocol}//${url.hostname}:${port}`;
}

function view(row: ChannelRow): NotificationChannelView {
  const { envelope: _envelope, keyId: _keyId, ...rest } = row;
  return rest;
}

/** The owner's channel, or NotFound: another owner's id is indistinguishable from a missing one. */
async function requireChannel(db: Database, owner: Owner, id: string): Promise<ChannelRow> {
  const channelId = requireId("id", id);
  const [row] = await db
    .select()
    .from(notificationChannels)
    .where(and(eq(notificationChannels.id, channelId), eq(notificationChannels.ownerId, owner.id)));
  if (!row) throw AppError.notFound("notification channel", channelId);
  return row;
}

export async function createNotificationChannel(
  deps: NotificationDeps,
  owner: Owner,
  input: { name: string; kind: string | undefined; url: string; secret: string },
): Promise<NotificationChannelView> {
  const data = parseInput(createSchema, input);
  const problem = deps.networkPolicy.hostProblem(urlHost(data.url));
  if (problem) throw AppError.invalid("url", `refused by policy: ${problem}`);
  const id = newId();
  const secrets: ChannelSecrets = { url: data.url.href, secret: data.secret };
  try {
    return await deps.db.transaction(async (tx) => {
      // Serialises concurrent creates of one owner, so the limit holds.
      await tx.select({ id: owners.id }).from(owners).where(eq(owners.id, owner.id)).for("update");
      const [existing] = await tx.select({ n: count() }).from(notificationChannels).where(eq(notificationChannels.ownerId, owner.id));
      if ((existing?.n ?? 0) >= deps.maxChannelsPerOwner) {
        throw new AppError("resource_exhausted", `at most ${deps.maxChannelsPerOwner} notification channels per owner`);
      }
      const [row] = await tx
        .insert(notificationChannels)
        .values({
          id,
          ownerId: owner.id,
          name: data.name,
          kind: data.kind,
          target: targetOf(data.url),
          keyId: deps.cipher.activeKeyId,
          // The channel id is the associated data: an envelope copied onto another row does not decrypt.
          envelope: deps.cipher.encrypt(JSON.stringify(secrets), id),
        })
        .returning();
      return view(row as ChannelRow);
    });
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw new AppError("already_exists", `a notification channel named "${data.name}" already exists`, { field: "name" });
    }
    throw error;
  }
}

export async function listNotificationChannels(db: Database, owner: Owner): Promise<NotificationChannelView[]> {
  const rows = await db
    .select()
    .from(notificationChannels)
    .where(eq(notificationChannels.ownerId, owner.id))
    .orderBy(asc(notificationChannels.id));
  return rows.map(view);
}

export async function deleteNotificationChannel(db: Database, owner: Owner, id: string): Promise<void> {
  const row = await requireChannel(db, owner, id);
  await db.delete(notificationChannels).where(and(eq(notificationChannels.id, row.id), eq(notificationChannels.ownerId, owner.id)));
}

export interface SendableChannel {
  id: string;
  kind: NotificationChannelKind;
  secrets: ChannelSecrets;
}

/** A channel decrypted for sending; for the sender only (the secrets never leave the process). */
export function sendable(cipher: CredentialsCipher, row: Pick<ChannelRow, "id" | "kind" | "envelope">): SendableChannel {
  return { id: row.id, kind: row.kind, secrets: JSON.parse(cipher.decrypt(row.envelope, row.id)) as ChannelSecrets };
}

export async function ownerChannelForSending(deps: NotificationDeps, owner: Owner, id: string): Promise<SendableChannel> {
  return sendable(deps.cipher, await requireChannel(deps.db, owner, id));
}
