import { type AddressInfo, connect, createServer } from "node:net";

/**
 * A TCP port on loopback that was free a moment ago and stays reserved for about a minute.
 *
 * A port that is merely closed again goes back to the kernel's ephemeral pool: another process's
 * bind(0) or outgoing connection may take it before the server it was meant for binds it (CI:
 * a Temporal dev server's frontend found its `--port` taken, panicked and exited 2). So, as the
 * Temporal CLI does for its own ports, one connection is accepted and closed from the server's
 * side first: the port sits in TIME_WAIT, which the kernel never hands out for bind(0) or
 * connect(), while a server binding it explicitly with SO_REUSEADDR (Node, Go, PostgreSQL,
 * Java, sshd, Redis all set it) gets it at once.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer((accepted) => accepted.destroy());
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      const client = connect({ port, host: "127.0.0.1" });
      client.once("error", reject);
      // The server's side closed first (its FIN came in): that side is the one left in TIME_WAIT.
      client.once("end", () => {
        client.destroy();
        server.close(() => resolve(port));
      });
      client.resume();
    });
  });
}
