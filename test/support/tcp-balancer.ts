import { createConnection, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP load balancer in front of several API processes, as a deployment puts one: new connections go
 * round-robin to the backends whose /healthz answered within a second at the last check (every second).
 */
export interface TcpBalancer {
  port: number;
  /** Connections handed to each backend so far, by backend index. */
  connections: number[];
  close(): Promise<void>;
}

export async function startTcpBalancer(backends: number[], listenHost = "0.0.0.0"): Promise<TcpBalancer> {
  const healthy = backends.map(() => true);
  const connections = backends.map(() => 0);
  const sockets = new Set<Socket>();
  let next = 0;
  const check = async () => {
    await Promise.all(
      backends.map(async (port, i) => {
        healthy[i] = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
          (r) => r.ok,
          () => false,
        );
      }),
    );
  };
  const timer = setInterval(() => void check(), 1000);
  const server: Server = createServer((client) => {
    const candidates = backends.map((_, i) => i).filter((i) => healthy[i]);
    const pool = candidates.length > 0 ? candidates : backends.map((_, i) => i);
    const index = pool[next++ % pool.length] as number;
    connections[index] = (connections[index] ?? 0) + 1;
    const upstream = createConnection({ host: "127.0.0.1", port: backends[index] as number });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  const port = await new Promise<number>((resolve) => {
    server.listen(0, listenHost, () => resolve((server.address() as { port: number }).port));
  });
  return {
    port,
    connections,
    async close() {
      clearInterval(timer);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
