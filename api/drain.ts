import { Code, ConnectError } from "@connectrpc/connect";

/** What a stream or a refused call ends with while the API drains: retryable, and what the CLI shows. */
export const RESTARTING_MESSAGE = "server is restarting, retrying";

export const restarting = () => new ConnectError(RESTARTING_MESSAGE, Code.Unavailable);

/**
 * A server stream's pause between two looks: `ms`, or less when the API starts to drain, in
 * which case the stream ends with Unavailable (clients reconnect to another process).
 */
export async function pauseUnlessDraining(ms: number, draining: AbortSignal | undefined): Promise<void> {
  if (draining?.aborted) throw restarting();
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    draining?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      draining?.removeEventListener("abort", done);
      resolve();
    }
  });
  if (draining?.aborted) throw restarting();
}
