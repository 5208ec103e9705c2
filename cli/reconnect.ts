import { Code, ConnectError } from "@connectrpc/connect";

/** How long a watch keeps reconnecting without an answer before it gives up with the error. */
const RECONNECT_BUDGET_MS = 120_000;
/** What a draining API ends streams with (api/drain.ts). */
const RESTARTING = "server is restarting, retrying";

/**
 * A server stream that outlives API restarts: when it ends with Unavailable (an API draining for a
 * restart, or none answering yet) it is opened again, after a growing pause, until `signal`
 * aborts or nothing answers for two minutes. Watches resend the whole state first, so nothing is lost.
 * `onRetry` gets the line to show the user.
 */
export async function* reconnecting<T>(
  open: () => AsyncIterable<T>,
  signal: AbortSignal,
  onRetry: (note: string) => void,
): AsyncGenerator<T> {
  let failingSince: number | undefined;
  let delayMs = 250;
  for (;;) {
    try {
      for await (const message of open()) {
        failingSince = undefined;
        delayMs = 250;
        yield message;
      }
      return;
    } catch (error) {
      if (signal.aborted || !(error instanceof ConnectError && error.code === Code.Unavailable)) throw error;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > RECONNECT_BUDGET_MS) throw error;
      // Fixed lines only: the error's own text came from the network.
      onRetry(error.rawMessage === RESTARTING ? RESTARTING : "the API is not answering, retrying");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, delayMs);
        signal.addEventListener("abort", done, { once: true });
        function done() {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        }
      });
      if (signal.aborted) throw error;
      delayMs = Math.min(delayMs * 2, 5000);
    }
  }
}
