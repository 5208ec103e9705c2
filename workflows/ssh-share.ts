import { ActivityFailure, ApplicationFailure, sleep } from "@temporalio/workflow";
import { SshErrorType } from "./failure-types.js";

const FIRST_PAUSE_MS = 1_000;
const LONGEST_PAUSE_MS = 30_000;

const isShareBusy = (error: unknown): boolean =>
  error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && error.cause.type === SshErrorType.ShareBusy;

/**
 * SSH activities that wait for their organization's share of a worker's SSH sessions: a step that
 * found the share in use (SshShareBusy) gave its activity slot back; the workflow pauses (1 s,
 * doubling to 30 s, with jitter) and schedules it again, without spending one of its retries.
 * Without that failure the calls are exactly the proxy's (recorded histories replay unchanged).
 */
export function waitingForSshShare<T extends object>(activities: T): T {
  return new Proxy(activities, {
    get(target, name) {
      const call = Reflect.get(target, name) as (...args: unknown[]) => Promise<unknown>;
      if (typeof call !== "function") return call;
      return async (...args: unknown[]) => {
        for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(LONGEST_PAUSE_MS, pause * 2)) {
          try {
            return await call(...args);
          } catch (error) {
            if (!isShareBusy(error)) throw error;
            await sleep(Math.round(pause * (1 + Math.random() / 2)));
          }
        }
      };
    },
  });
}
