import { and, asc, eq, gt, lte } from "drizzle-orm";
import type { Database } from "../../db/client.js";
import { auditChains, auditEvents } from "../../db/schema.js";
import { type AuditFields, canonicalEntry, chainHash, GENESIS_HASH } from "./chain.js";

export type AuditBreak = "changed" | "missing" | "inserted";

export type VerifyResult =
  | { ok: true; checked: number; checkpointSeq: number; lastSeq: number; lastHash: string }
  | { ok: false; seq: number; problem: AuditBreak; checked: number; checkpointSeq: number };

/** Rows read per query while walking a chain. */
const BATCH = 2000;

/**
 * Walks an organization's chain from its checkpoint (the last entry retention removed) to its head,
 * recomputing each hash from the entry and the one before, and names the first sequence where it
 * breaks: an entry whose content or hash changed (or one put in its place), a sequence with no
 * entry (removed), or an entry at or below the checkpoint or past the head (inserted). Reads one
 * snapshot, so appends made meanwhile are neither checked nor mistaken for insertions.
 */
export async function verifyAuditChain(db: Database, ownerId: string): Promise<VerifyResult> {
  return db.transaction(
    async (tx) => {
      const [head] = await tx.select().from(auditChains).where(eq(auditChains.ownerId, ownerId));
      const checkpointSeq = head?.checkpointSeq ?? 0;
      const lastSeq = head?.lastSeq ?? 0;
      const lastHash = head?.lastHash ?? GENESIS_HASH;
      const [below] = await tx
        .select({ seq: auditEvents.seq })
        .from(auditEvents)
        .where(and(eq(auditEvents.ownerId, ownerId), lte(auditEvents.seq, checkpointSeq)))
        .orderBy(asc(auditEvents.seq))
        .limit(1);
      if (below) return { ok: false, seq: below.seq, problem: "inserted", checked: 0, checkpointSeq };
      let previous = { seq: checkpointSeq, hash: head?.checkpointHash ?? GENESIS_HASH };
      let checked = 0;
      for (;;) {
        const rows = await tx
          .select()
          .from(auditEvents)
          .where(and(eq(auditEvents.ownerId, ownerId), gt(auditEvents.seq, previous.seq)))
          .orderBy(asc(auditEvents.seq))
          .limit(BATCH);
        for (const row of rows) {
          const broken = (seq: number, problem: AuditBreak): VerifyResult => ({ ok: false, seq, problem, checked, checkpointSeq });
          if (row.seq > lastSeq) return broken(row.seq, row.seq === previous.seq + 1 ? "inserted" : "missing");
          if (row.seq !== previous.seq + 1) return broken(previous.seq + 1, "missing");
          const hash = chainHash(previous.hash, row.seq, canonicalEntry(row as AuditFields));
          if (hash !== row.hash) return broken(row.seq, "changed");
          previous = { seq: row.seq, hash: row.hash };
          checked += 1;
        }
        if (rows.length < BATCH) break;
      }
      if (previous.seq < lastSeq) return { ok: false, seq: previous.seq + 1, problem: "missing", checked, checkpointSeq };
      if (previous.hash !== lastHash) return { ok: false, seq: lastSeq, problem: "changed", checked, checkpointSeq };
      return { ok: true, checked, checkpointSeq, lastSeq, lastHash };
    },
    { isolationLevel: "repeatable read", accessMode: "read only" },
  );
}
