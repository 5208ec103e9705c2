import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type MetricsAccess, metricsHandler } from "./metrics.js";
import { type Readiness, readinessHandler } from "./readiness.js";

/**
 * A worker running alone (`main.ts worker`) has no API listener: this serves
 * its registry on a port of its own (`WORKER_METRICS_PORT`), `GET` and `HEAD /metrics` only, to whom `access` admits,
 * and its readiness (`/readyz`, to anyone, as on the API's port) when given one.
 */
export async function serveMetrics(
  port: number,
  access: MetricsAccess = {},
  readiness?: Readiness,
  host = "0.0.0.0",
): Promise<{ port: number; close(): Promise<void> }> {
  const metrics = metricsHandler(access);
  const ready = readiness && readinessHandler(readiness);
  const server = createServer((req, res) => {
    const read = req.method === "GET" || req.method === "HEAD";
    if (read && req.url === "/metrics") return metrics(req, res);
    if (read && req.url === "/readyz" && ready) return ready(req, res);
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
