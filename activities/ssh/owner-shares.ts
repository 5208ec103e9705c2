import { ApplicationFailure } from "@temporalio/common";
import { SshErrorType, sshFailure } from "./errors.js";

interface Waiter {
  grant: () => void;
}

interface OwnerState {
  active: number;
  waiting: Waiter[];
}

export interface SshShareSettings {
  /** SSH sessions one owner's activities use at once on this worker (WORKER_SSH_SESSIONS_PER_OWNER). */
  perOwner: number;
  /** Activities of one owner that may wait here for its share, each holding an activity slot. */
  waitingPerOwner: number;
  /** How long one waits before it gives its slot back (its workflow tries again later). */
  maxWaitMs: number;
}

export const defaultSshShares: SshShareSettings = { perOwner: 8, waitingPerOwner: 8, maxWaitMs: 20_000 };

/**
 * Each owner's share of the SSH sessions a worker runs at once. Sessions beyond the share wait in
 * the owner's FIFO queue; the queue is short and the wait bounded, because a waiting activity
 * holds one of the worker's activity slots: an owner holds at most `perOwner + waitingPerOwner`
 * slots, whatever it starts, and the rest stay free for everyone else. An activity that finds its
 * owner's queue full, or waits past `maxWaitMs`, fails with SshShareBusy, which no Temporal retry
 * counts: the workflow sleeps and schedules the step again (workflows/ssh-share.ts).
 */
export class SshShares {
  private readonly owners = new Map<string, OwnerState>();

  constructor(readonly settings: SshShareSettings = defaultSshShares) {}

  /** Waits for a session of `ownerId`'s share; the returned function gives it back (once). */
  async acquire(ownerId: string, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    const state = this.owners.get(ownerId) ?? { active: 0, waiting: [] };
    this.owners.set(ownerId, state);
    if (state.active < this.settings.perOwner && state.waiting.length === 0) {
      state.active += 1;
      return this.releaser(ownerId, state);
    }
    if (state.waiting.length >= this.settings.waitingPerOwner) {
      throw busy(
        `all ${this.settings.perOwner} SSH sessions of this organization on the worker are in use and ${state.waiting.length} steps wait for one`,
      );
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const leave = () => {
        const at = state.waiting.indexOf(waiter);
        if (at >= 0) state.waiting.splice(at, 1);
        this.forget(ownerId, state);
      };
      const onAbort = () => {
        clearTimeout(timer);
        leave();
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        leave();
        reject(busy(`no SSH session of this organization's share came free on the worker within ${this.settings.maxWaitMs} ms`));
      }, this.settings.maxWaitMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      state.waiting.push(waiter);
    });
    return this.releaser(ownerId, state);
  }

  /** Sessions in use and steps waiting, per owner (for tests and metrics). */
  usage(ownerId: string): { active: number; waiting: number } {
    const state = this.owners.get(ownerId);
    return { active: state?.active ?? 0, waiting: state?.waiting.length ?? 0 };
  }

  private releaser(ownerId: string, state: OwnerState): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = state.waiting.shift();
      // The session passes straight to the next waiter: `active` stays, so no newcomer overtakes it.
      if (next) next.grant();
      else {
        state.active -= 1;
        this.forget(ownerId, state);
      }
    };
  }

  private forget(ownerId: string, state: OwnerState): void {
    if (state.active === 0 && state.waiting.length === 0) this.owners.delete(ownerId);
  }
}

const busy = (message: string) => sshFailure(SshErrorType.ShareBusy, message);

/** A step that did not run for want of a share: never an outcome of the step, always rethrown (its workflow schedules it again). */
export const isShareBusy = (error: unknown): boolean => error instanceof ApplicationFailure && error.type === SshErrorType.ShareBusy;
