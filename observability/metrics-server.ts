import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type MetricsAccess, metricsHandler } from "./metrics.js";

/**
 * A worker running alone (`main.ts worker`) has no API listener: this serves
 * its registry on a port of its own (`WORKER_METRICS_PORT`), `GET` and `HEAD /metrics` only, to whom `access` admits.
 */
export async function serveMetrics(
  port: number,
  access: MetricsAccess = {},
  host = "0.0.0.0",
): Promise<{ port: number; close(): Promise<void> }> {
  const metrics = metricsHandler(access);
  const server = createServer((req, res) => {
    if ((req.method === "GET" || req.method === "HEAD") && req.url === "/metrics") return metrics(req, res);
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
