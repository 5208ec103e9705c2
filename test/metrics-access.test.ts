import assert from "node:assert/strict";
import { request } from "node:http";
import { networkInterfaces } from "node:os";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../core/kernel/config.js";
import type { MetricsAccess } from "../observability/metrics.js";
import { serveMetrics } from "../observability/metrics-server.js";
import { startTestApi, type TestApi } from "./support/api.js";

/**
 * `/metrics` is safe by default: without METRICS_TOKEN it answers only a scraper on the machine itself (a loopback
 * peer, not forwarded by a proxy); with the token, only requests bearing it; anyone only with METRICS_PUBLIC=true.
 * Requests come from a real non-loopback address of this machine to show what another host gets.
 */
const outside = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
const token = "metrics-token-0123456789";

/** GET (or `method`) /metrics from `localAddress` to `host`, with extra headers; the status and body. */
function scrape(host: string, port: number, localAddress: string, headers: Record<string, string> = {}, method = "GET") {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host, port, path: "/metrics", localAddress, headers, method }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

for (const [name, access] of [
  ["by default", {}],
  ["with METRICS_TOKEN", { token }],
  ["with METRICS_PUBLIC=true", { public: true }],
] as [string, MetricsAccess][]) {
  describe(`/metrics ${name}`, () => {
    let api: TestApi;
    let worker: Awaited<ReturnType<typeof serveMetrics>>;
    before(async () => {
      assert.ok(outside, "this machine has a non-loopback IPv4 address");
      api = await startTestApi({ listenHost: "0.0.0.0", metricsAccess: access });
      worker = await serveMetrics(0, access);
    });
    after(async () => {
      await api?.close();
      await worker?.close();
    });

    test("on the API port and the worker's own", async () => {
      for (const port of [api.port, worker.port]) {
        const local = await scrape("127.0.0.1", port, "127.0.0.1");
        const remote = await scrape(outside!, port, outside!);
        const proxied = await scrape("127.0.0.1", port, "127.0.0.1", { "x-forwarded-for": "203.0.113.9" });
        const bearing = await scrape(outside!, port, outside!, { authorization: `Bearer ${token}` });
        const served = (r: { status: number; body: string }) => r.status === 200 && r.body.includes("process_cpu_user_seconds_total");
        if (access.public) {
          assert.ok(served(local) && served(remote) && served(proxied), "anyone, as asked");
        } else if (access.token) {
          assert.deepEqual([local.status, remote.status, proxied.status], [401, 401, 401], "the token, from anywhere");
          assert.ok(served(bearing));
        } else {
          assert.ok(served(local), "a scraper on this machine");
          assert.equal(remote.status, 403, "another host");
          assert.equal(proxied.status, 403, "a request a local proxy forwarded");
          assert.equal(bearing.status, 403, "no token is configured");
          assert.match(remote.body, /METRICS_TOKEN/);
          assert.ok(!remote.body.includes("process_"));
        }
      }
    });

    test("HEAD gets GET's answer without its body, on both ports", async () => {
      for (const port of [api.port, worker.port]) {
        for (const [host, headers] of [
          ["127.0.0.1", {}],
          [outside!, {}],
          ["127.0.0.1", { "x-forwarded-for": "203.0.113.9" }],
          [outside!, { authorization: `Bearer ${token}` }],
        ] as [string, Record<string, string>][]) {
          const get = await scrape(host, port, host, headers);
          const head = await scrape(host, port, host, headers, "HEAD");
          assert.deepEqual(head, { status: get.status, body: "" }, `HEAD from ${host} ${JSON.stringify(headers)} on port ${port}`);
        }
      }
    });
  });
}

test("METRICS_PUBLIC is true or false, and never together with METRICS_TOKEN", () => {
  assert.equal(loadConfig({}).METRICS_PUBLIC, false);
  assert.equal(loadConfig({ METRICS_PUBLIC: "true" }).METRICS_PUBLIC, true);
  assert.throws(() => loadConfig({ METRICS_PUBLIC: "yes" }), /invalid configuration: METRICS_PUBLIC must be true or false$/);
  assert.throws(
    () => loadConfig({ METRICS_PUBLIC: "true", METRICS_TOKEN: token }),
    /invalid configuration: METRICS_PUBLIC must not be true when METRICS_TOKEN is set/,
  );
});
