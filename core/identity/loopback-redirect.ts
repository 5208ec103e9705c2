import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** Where the browser comes back after sign-in, and the promise of the URL it came back to. */
export interface LoopbackRedirect {
  /** `http://127.0.0.1:<port>/callback`: any port matches a provider's registered loopback URI (RFC 8252 §7.3). */
  redirectUri: string;
  /** The first request to the callback path, as a full URL (code and state, or the provider's error). */
  callback: Promise<URL>;
  close(): Promise<void>;
}

const callbackPath = "/callback";

/**
 * A one-shot HTTP listener on 127.0.0.1 for a native sign-in (`axion login --sso`, as `gh auth login`
 * does): the provider redirects the person's browser to it, it answers a short page and hands the URL
 * over. Other paths get 404 and leave it waiting; it closes after the first callback. A free port
 * unless `port` is given (for a provider that matches the registered port exactly).
 */
export async function listenForLoopbackRedirect(options: { timeoutMs?: number; port?: number } = {}): Promise<LoopbackRedirect> {
  let settle!: { resolve: (url: URL) => void; reject: (error: Error) => void };
  const callback = new Promise<URL>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", redirectUri);
    if (request.method !== "GET" || url.pathname !== callbackPath) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
    response.end("Signed in to Axion. You can close this window.\n");
    settle.resolve(url);
    void close();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", resolve);
  });
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}${callbackPath}`;
  const timer = setTimeout(() => settle.reject(new Error("no sign-in came back in time")), options.timeoutMs ?? 5 * 60_000);
  timer.unref();
  const close = () =>
    new Promise<void>((resolve) => {
      clearTimeout(timer);
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { redirectUri, callback, close };
}
