import { and, eq, isNull, ne } from "drizzle-orm";
import type { Database } from "../db/client.js";
import { type ServerStatus, servers } from "../db/schema.js";
import { enqueueServerEvent } from "./outbox.js";

/**
 * Changes a server's status with a reason and time, and writes the
 * `server.status_changed` event to the outbox in the same transaction.
 * No-op (no event) when the status is already the requested one.
 */
export async function setServerStatus(db: Database, serverId: string, status: ServerStatus, reason: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const now = new Date();
    const [previous] = await tx.select({ status: servers.status }).from(servers).where(eq(servers.id, serverId)).for("update");
    if (!previous) return false;
    const [changed] = await tx
      .update(servers)
      .set({ status, statusReason: reason, statusChangedAt: now, updatedAt: now })
      .where(and(eq(servers.id, serverId), ne(servers.status, status)))
      .returning({ id: servers.id });
    if (!changed) return false;
    await enqueueServerEvent(tx, serverId, "server.status_changed", {
      serverId,
      from: previous.status,
      to: status,
      reason,
      at: now.toISOString(),
    });
    return true;
  });
}

/** Trust on first use: pins the fingerprint only if none is pinned yet. Returns the pinned value. */
export async function pinHostKey(db: Database, serverId: string, fingerprint: string): Promise<void> {
  await db
    .update(servers)
    .set({ hostKeyFingerprint: fingerprint })
    .where(and(eq(servers.id, serverId), isNull(servers.hostKeyFingerprint)));
}

/** A reinstall regenerates host keys on purpose: forget the pin so the new key is trusted on first use. */
export async function clearHostKeyPin(db: Database, serverId: string): Promise<void> {
  await db.update(servers).set({ hostKeyFingerprint: null }).where(eq(servers.id, serverId));
}
