import { createHash } from "node:crypto";
import type { AuditActorKind, AuditOutcome, SystemActorName } from "../kernel/kinds.js";

/** The chain of callers refused before they named an organization (no owner). */
export const INSTALLATION_CHAIN = "00000000-0000-0000-0000-000000000000";
/** The hash before the first entry of a chain. */
export const GENESIS_HASH = "0".repeat(64);

/** What an entry says, as stored; `seq` and `hash` are the chain's. */
export interface AuditFields {
  id: string;
  at: Date;
  ownerId: string;
  actorKind: AuditActorKind;
  actorId: string;
  actorName: SystemActorName | null;
  action: string;
  targetIds: string[];
  clientAddress: string | null;
  userAgent: string | null;
  requestId: string | null;
  traceId: string | null;
  detail: string | null;
  outcome: AuditOutcome;
}

/**
 * The canonical encoding of an entry: a JSON array in a fixed order (JSON.stringify of strings,
 * arrays and null is deterministic), tagged with its version. Every field is in it.
 */
export function canonicalEntry(e: AuditFields): string {
  return JSON.stringify([
    "axion-audit-v1",
    e.id,
    e.at.toISOString(),
    e.ownerId,
    e.actorKind,
    e.actorId,
    e.actorName,
    e.action,
    e.targetIds,
    e.clientAddress,
    e.userAgent,
    e.requestId,
    e.traceId,
    e.detail,
    e.outcome,
  ]);
}

/**
 * SHA-256 over the previous entry's hash (32 bytes), the sequence (8 bytes, big-endian) and the
 * canonical entry (UTF-8). The append computes the same in SQL (core/audit/record.ts); this is
 * the verifier's copy.
 */
export function chainHash(previousHash: string, seq: number, canonical: string): string {
  const sequence = Buffer.alloc(8);
  sequence.writeBigInt64BE(BigInt(seq));
  return createHash("sha256").update(Buffer.from(previousHash, "hex")).update(sequence).update(canonical, "utf8").digest("hex");
}
