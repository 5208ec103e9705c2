import type { AddressInfo } from "node:net";
import { createServer, type Socket } from "node:net";

export interface HangingReceiver {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Connections open now, and the most that were open at once. */
  open(): number;
  mostOpenAtOnce(): number;
  /** Resolves when `count` connections have been accepted since the receiver started. */
  accepted(count: number): Promise<void>;
  /** Resolves when the sender has closed `count` connections, with the milliseconds each was open. */
  closedBySender(count: number): Promise<number[]>;
  close(): Promise<void>;
}

/**
 * An HTTP receiver that reads each request and never answers: a notification endpoint that hangs.
 * A plain TCP listener, so nothing on this side ever ends a connection; only the sender does.
 */
export async function startHangingReceiver(): Promise<HangingReceiver> {
  const sockets = new Set<Socket>();
  let acceptedCount = 0;
  let most = 0;
  const lifetimes: number[] = [];
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  const until = async (done: () => boolean) => {
    while (!done()) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  const server = createServer((socket) => {
    const opened = Date.now();
    acceptedCount += 1;
    sockets.add(socket);
    most = Math.max(most, sockets.size);
    socket.on("error", () => {});
    socket.resume();
    socket.on("close", () => {
      if (sockets.delete(socket)) lifetimes.push(Date.now() - opened);
      wake();
    });
    wake();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    open: () => sockets.size,
    mostOpenAtOnce: () => most,
    accepted: (count) => until(() => acceptedCount >= count),
    closedBySender: async (count) => {
      await until(() => lifetimes.length >= count);
      return lifetimes.slice(0, count);
    },
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
