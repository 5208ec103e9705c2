import { and, eq, isNull, ne, sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { operations, servers } from "../../db/schema.js";
import { busyStatuses, type OperationKind, type ServerStatus, serverStatuses } from "../kernel/kinds.js";
import { enqueueServerEvent } from "../kernel/outbox.js";

/**
 * The server status state machine: who may move a server from which status to
 * which. Every status write goes through `setServerStatus`, which checks this
 * table under a lock on the server row, except the liveness sweep
 * (core/agents/liveness.ts): one SQL statement that makes only the `liveness`
 * moves below, ERROR → ONLINE only after a later agent registration.
 */

export type StatusActor =
  /** A running operation's workflow, writing for its own operation row. */
  | { by: "operation"; kind: OperationKind; operationId: string }
  | { by: "liveness" }
  | { by: "connection_test" }
  | { by: "fleet_check" }
  /** The SSH layer: a host key that differs from the pinned one, seen by any workflow. */
  | { by: "host_key_check" }
  /** The operations reconciler, repairing what a dead or terminated workflow left. */
  | { by: "reconciler" }
  /** The owner, through UpdateServer: another address may be another machine. */
  | { by: "user" }
  /** The owner, through AcceptHostKey: the host presented the key the owner named, now pinned. */
  | { by: "host_key_acceptance" };

export type ActorName = Exclude<StatusActor["by"], "operation"> | `operation:${OperationKind}`;

const ANY: readonly ServerStatus[] = serverStatuses;
const SETTLED = ANY.filter((s) => !busyStatuses.includes(s));
const failed: ServerStatus[] = ["ERROR", "UNREACHABLE"];

type Rule = { from: readonly ServerStatus[]; to: readonly ServerStatus[] };

/** Statuses a heartbeat proves wrong: the agent is alive, so the server is ONLINE. */
export const LIVENESS_REVIVES: readonly ServerStatus[] = ["OFFLINE", "CONFIGURED", "UNREACHABLE"];
/**
 * ERROR says an operation failed. Heartbeats alone do not prove that wrong (a
 * failed recovery on a host whose agent runs stays ERROR); an agent that
 * registered after the server went ERROR does: the agent install the failed
 * operation gave up on has finished after all. The sweep revives these only then.
 */
export const LIVENESS_REVIVES_AFTER_REGISTRATION: readonly ServerStatus[] = ["ERROR"];

/** The allowed transitions per actor; anything not listed is refused. */
export const STATUS_TRANSITIONS: Record<ActorName, readonly Rule[]> = {
  "operation:bootstrap": [
    { from: ANY, to: ["PROVISIONING"] },
    { from: ["PROVISIONING"], to: ["CONFIGURED", ...failed] },
    { from: SETTLED, to: failed },
  ],
  "operation:reinstall": [
    { from: ANY, to: ["REINSTALLING"] },
    { from: busyStatuses, to: ["CONFIGURED", ...failed] },
    { from: SETTLED, to: failed },
  ],
  "operation:recovery": [{ from: ANY, to: failed }],
  "operation:deploy_key": [{ from: ANY, to: failed }],
  "operation:install_agent": [{ from: ANY, to: failed }],
  "operation:test_connection": [],
  // A heartbeat proves the agent alive; silence past the timeout proves nothing more than OFFLINE.
  liveness: [
    { from: ["ONLINE"], to: ["OFFLINE"] },
    { from: [...LIVENESS_REVIVES, ...LIVENESS_REVIVES_AFTER_REGISTRATION], to: ["ONLINE"] },
  ],
  // Probes: an agent that heartbeats says more than one failed login, and a running operation owns its status.
  connection_test: [{ from: SETTLED.filter((s) => s !== "ONLINE" && s !== "HOSTKEY_MISMATCH"), to: ["UNREACHABLE"] }],
  fleet_check: [{ from: SETTLED.filter((s) => s !== "ONLINE" && s !== "HOSTKEY_MISMATCH"), to: ["UNREACHABLE"] }],
  host_key_check: [{ from: ANY, to: ["HOSTKEY_MISMATCH"] }],
  reconciler: [{ from: busyStatuses, to: ["ERROR"] }],
  user: [{ from: SETTLED, to: ["PENDING"] }],
  host_key_acceptance: [{ from: ["HOSTKEY_MISMATCH"], to: ["PENDING"] }],
};

const actorName = (actor: StatusActor): ActorName => (actor.by === "operation" ? `operation:${actor.kind}` : actor.by);

/** Does the table allow `actor` to move a server from `from` to `to`? */
export function transitionAllowed(actor: StatusActor, from: ServerStatus, to: ServerStatus): boolean {
  return STATUS_TRANSITIONS[actorName(actor)].some((rule) => rule.from.includes(from) && rule.to.includes(to));
}

/** Actors that must stand back while a provisioning operation runs on the server. */
const yieldsToRunningOperation = new Set<StatusActor["by"]>([
  "connection_test",
  "fleet_check",
  "reconciler",
  "user",
  "host_key_acceptance",
]);

export type StatusWrite = { changed: true } | { changed: false; refused?: string };

/**
 * Changes a server's status with a reason and time, and writes the
 * `server.status_changed` event to the outbox in the same transaction, if the
 * state machine allows it: the transition is in the table, a probe or the
 * reconciler finds no running provisioning operation, an operation writes only
 * while its own row is RUNNING. No-op (no event) when the status is already the
 * requested one, or not one of `onlyFrom` when given.
 */
export async function setServerStatus(
  db: Database,
  serverId: string,
  status: ServerStatus,
  reason: string,
  actor: StatusActor,
  options: { onlyFrom?: readonly ServerStatus[] } = {},
): Promise<StatusWrite> {
  return db.transaction(async (tx) => {
    const now = new Date();
    const [previous] = await tx.select({ status: servers.status }).from(servers).where(eq(servers.id, serverId)).for("update");
    if (!previous) return { changed: false, refused: "no such server" };
    if (previous.status === status) return { changed: false };
    if (options.onlyFrom && !options.onlyFrom.includes(previous.status)) return { changed: false };
    if (!transitionAllowed(actor, previous.status, status)) {
      return { changed: false, refused: `${actorName(actor)} may not move a server from ${previous.status} to ${status}` };
    }
    if (yieldsToRunningOperation.has(actor.by)) {
      const [running] = await tx
        .select({ id: operations.id, kind: operations.kind })
        .from(operations)
        .where(and(eq(operations.serverId, serverId), eq(operations.status, "RUNNING"), ne(operations.kind, "test_connection")))
        .limit(1);
      if (running) return { changed: false, refused: `a ${running.kind} operation (${running.id}) is running` };
    }
    if (actor.by === "operation") {
      const [own] = await tx.select({ status: operations.status }).from(operations).where(eq(operations.id, actor.operationId));
      if (own?.status !== "RUNNING") return { changed: false, refused: `operation ${actor.operationId} is no longer running` };
    }
    // The database's clock: the liveness sweep compares status_changed_at with agent registration times (one clock).
    await tx
      .update(servers)
      .set({ status, statusReason: reason, statusChangedAt: sql`now()`, updatedAt: sql`now()` })
      .where(eq(servers.id, serverId));
    await enqueueServerEvent(tx, serverId, "server.status_changed", {
      serverId,
      from: previous.status,
      to: status,
      reason,
      at: now.toISOString(),
    });
    return { changed: true };
  });
}

/** Trust on first use: pins the fingerprint only if none is pinned yet (a pin already there is kept). */
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
