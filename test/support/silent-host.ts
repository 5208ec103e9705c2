import { type AddressInfo, createServer, type Socket } from "node:net";

export interface SilentHost {
  host: string;
  port: number;
  /** Connections accepted so far. */
  accepted(): number;
  /** Resolves when this host has accepted `count` connections in all. */
  acceptedCount(count: number): Promise<void>;
  /** The most connections that were open at once. */
  mostOpenAtOnce(): number;
  /** Calls `listener` when a connection this host accepted is closed by the other side. */
  onClose(listener: () => void): void;
  close(): Promise<void>;
}

/**
 * A TCP listener that accepts connections and never says a word: an SSH server
 * that hangs before its banner. An operation on it stays in its connect step
 * until the connect timeout, or until it is cancelled. No test host needed.
 */
export async function startSilentHost(host = "127.0.0.2"): Promise<SilentHost> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let most = 0;
  const closeListeners: (() => void)[] = [];
  const acceptWaiters: { count: number; resolve: () => void }[] = [];
  const server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    most = Math.max(most, sockets.size);
    for (const w of acceptWaiters.filter((w) => accepted >= w.count)) {
      acceptWaiters.splice(acceptWaiters.indexOf(w), 1);
      w.resolve();
    }
    socket.on("error", () => {});
    socket.resume(); // reads (and drops) what the client says, so its end is seen
    socket.on("close", () => {
      if (sockets.delete(socket)) for (const listener of closeListeners) listener();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  return {
    host,
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    acceptedCount: (count) =>
      accepted >= count ? Promise.resolve() : new Promise<void>((resolve) => acceptWaiters.push({ count, resolve })),
    mostOpenAtOnce: () => most,
    onClose: (listener) => closeListeners.push(listener),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of [...sockets]) {
          sockets.delete(socket);
          socket.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
