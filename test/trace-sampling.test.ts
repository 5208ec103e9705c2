import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { tracing } from "@opentelemetry/sdk-node";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { startTracing, stopTracing } from "../observability/tracing.js";
import { startTestApi, type TestApi } from "./support/api.js";

/**
 * The service samples by its own rule (OTEL_TRACES_SAMPLE_RATIO, by trace id), whatever a caller's `traceparent`
 * says: a caller cannot make it record a trace it would not sample itself, nor keep it from recording one it would.
 * Spans end before the answer is sent and the simple processor exports on end, so the exporter holds them once a call answers.
 */
const exporter = new tracing.InMemorySpanExporter();
let api: TestApi;

before(async () => {
  await startTracing({
    serviceName: "axion-sampling-test",
    role: "api",
    sampleRatio: 0.5,
    spanProcessor: new tracing.SimpleSpanProcessor(exporter),
  });
  api = await startTestApi({});
});
after(async () => {
  await api?.close();
  await stopTracing();
});

// A ratio sampler takes a trace when the XOR of its trace id's 32-bit words is under ratio × 2^32.
const notTakenAtHalf = "ffffffff000000000000000000000000";
const takenAtHalf = "00000000000000000000000000000001";
const callerSpan = "1111111111111111";

async function listClustersWith(traceparent: string): Promise<tracing.ReadableSpan[]> {
  exporter.reset();
  const { token } = await api.newOwner();
  const clusters = createClient(
    ClusterService,
    createConnectTransport({
      baseUrl: api.baseUrl,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          req.header.set("traceparent", traceparent);
          return next(req);
        },
      ],
    }),
  );
  await clusters.listClusters({});
  return exporter.getFinishedSpans().filter((s) => s.name === "axion.infrastructure.v1.ClusterService/ListClusters");
}

test("a caller's sampled flag does not make the service record a trace its own rule would not take", async () => {
  assert.deepEqual(await listClustersWith(`00-${notTakenAtHalf}-${callerSpan}-01`), []);
});

test("a trace the service's rule takes is recorded in the caller's trace, even when the caller did not sample it", async () => {
  const [span, ...more] = await listClustersWith(`00-${takenAtHalf}-${callerSpan}-00`);
  assert.equal(more.length, 0);
  assert.equal(span?.spanContext().traceId, takenAtHalf, "the caller's trace id is kept");
  assert.equal(span?.parentSpanId, callerSpan);
});
