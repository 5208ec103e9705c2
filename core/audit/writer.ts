import type { Database } from "../../db/client.js";
import { errorSummary, log } from "../kernel/log.js";
import { INSTALLATION_CHAIN } from "./chain.js";
import { type AuditRecord, recordAudit } from "./record.js";

export interface AuditWriter {
  /** Queues an entry; resolves at once, or once there is room when MAX_QUEUED entries wait (the caller slows down, nothing is dropped). */
  write(record: AuditRecord): Promise<void>;
  /** Resolves when every entry queued before the call is written (ListAuditEvents and VerifyAuditTrail read after it). */
  drained(): Promise<void>;
}

/** Entries waiting in one process before callers wait for room. */
const MAX_QUEUED = 10_000;

/**
 * The API's audit appends, off the answer's path: entries queue per chain and each chain's are
 * appended in order, one statement each (core/audit/record.ts), chains side by side. A change is
 * committed by its handler before its entry either way (no entry shares the handler's
 * transaction), so writing before the answer would only delay the answer, not close that gap.
 * A failed append is logged as an error; the entry is not retried (its chain head moved on or the
 * database is gone).
 */
export function startAuditWriter(db: Database): AuditWriter {
  type Item = { record: AuditRecord; written: Promise<void>; done: () => void };
  const queues = new Map<string, Item[]>();
  let pending = 0;
  const room: (() => void)[] = [];

  async function drainChain(chain: string, queue: Item[]): Promise<void> {
    for (;;) {
      const item = queue[0];
      if (!item) break;
      try {
        await recordAudit(db, item.record);
      } catch (error) {
        log.error("audit entry not recorded", { action: item.record.action, outcome: item.record.outcome, ...errorSummary(error) });
      }
      queue.shift();
      pending -= 1;
      item.done();
      if (pending < MAX_QUEUED) for (const wake of room.splice(0)) wake();
    }
    queues.delete(chain);
  }

  return {
    async write(record) {
      while (pending >= MAX_QUEUED) await new Promise<void>((resolve) => room.push(resolve));
      const chain = record.ownerId ?? INSTALLATION_CHAIN;
      let done = () => {};
      const written = new Promise<void>((resolve) => {
        done = resolve;
      });
      pending += 1;
      const queue = queues.get(chain);
      if (queue) {
        queue.push({ record, written, done });
        return;
      }
      const started = [{ record, written, done }];
      queues.set(chain, started);
      void drainChain(chain, started);
    },
    async drained() {
      // Each chain is written in order: its last queued entry written means all before it are.
      await Promise.all([...queues.values()].map((queue) => queue.at(-1)?.written));
    },
  };
}
