import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { tracing } from "@opentelemetry/sdk-node";
import { type Cidr, createNetworkPolicy, parseCidr } from "../core/security/network-policy.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { ConnectionOutcome, ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { startTracing, stopTracing } from "../observability/tracing.js";
import { ed25519KeyPair } from "./support/keys.js";
import { type ProvisioningHarness, startProvisioningHarness } from "./support/provisioning-harness.js";
import { startTestSshServer, type TestSshServer } from "./support/ssh-server.js";

/**
 * One trace from a caller's `traceparent` through the API, the Temporal client, the workflow, its activity and
 * the activity's SSH command: the real API, Temporal dev server and worker in this process, the SDK's in-memory exporter.
 */
const exporter = new tracing.InMemorySpanExporter();
const passphrase = "tracing-test-passphrase-51aa";
const key = ed25519KeyPair(passphrase);
const loopbackToo = createNetworkPolicy({ allow: ["127.0.0.1/32", "0.0.0.0/0", "::/0"].map((c) => parseCidr(c) as Cidr) });
let harness: ProvisioningHarness;
let sshd: TestSshServer;

before(async () => {
  await startTracing({ serviceName: "axion-tracing-test", role: "all", spanProcessor: new tracing.SimpleSpanProcessor(exporter) });
  sshd = await startTestSshServer(key.publicKey);
  harness = await startProvisioningHarness({ networkPolicy: loopbackToo });
});

after(async () => {
  await harness?.close();
  await sshd?.close();
  await stopTracing();
});

async function spansUntil(done: (spans: tracing.ReadableSpan[]) => boolean, withinMs = 20_000): Promise<tracing.ReadableSpan[]> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const spans = exporter.getFinishedSpans();
    if (done(spans)) return spans;
    if (Date.now() > deadline) assert.fail(`spans so far: ${spans.map((s) => s.name).join(", ")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("a connection test is one trace: RPC → workflow start → workflow → activity → SSH command, secrets nowhere", async () => {
  const { token } = await harness.api.newOwner();
  const traceId = randomBytes(16).toString("hex");
  const callerSpanId = randomBytes(8).toString("hex");
  const transport = createConnectTransport({
    baseUrl: harness.api.baseUrl,
    httpVersion: "1.1",
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        req.header.set("traceparent", `00-${traceId}-${callerSpanId}-01`);
        return next(req);
      },
    ],
  });
  const clusters = createClient(ClusterService, transport);
  const servers = createClient(ServerService, transport);
  const clusterId = (await clusters.createCluster({ name: "traced" })).cluster!.id;
  const server = (
    await servers.createServer({
      clusterId,
      name: "traced-1",
      host: "127.0.0.1",
      sshPort: sshd.port,
      credential: { method: { case: "privateKey", value: { key: key.privateKey, passphrase } } },
    })
  ).server!;
  const tested = await servers.testServerConnection({ id: server.id });
  assert.equal(tested.outcome, ConnectionOutcome.OK, tested.message);

  const spans = await spansUntil(
    (all) => all.some((s) => s.name === "RunWorkflow:testConnectionWorkflow") && all.some((s) => s.name === "ssh facts"),
  );
  const named = (name: string) => {
    const found = spans.filter((s) => s.name === name);
    assert.equal(found.length, 1, `one ${name} span (of ${spans.map((s) => s.name).join(", ")})`);
    return found[0]!;
  };
  const rpc = named("axion.infrastructure.v1.ServerService/TestServerConnection");
  const start = named("StartWorkflow:testConnectionWorkflow");
  const run = named("RunWorkflow:testConnectionWorkflow");
  const schedule = named("StartActivity:testConnection");
  const activity = named("RunActivity:testConnection");
  const ssh = named("ssh facts"); // the connection test reads the host's facts in one command
  const chain = [rpc, start, run, schedule, activity, ssh];
  for (const span of chain) assert.equal(span.spanContext().traceId, traceId, `${span.name} is in the caller's trace`);
  assert.equal(rpc.parentSpanId, callerSpanId, "the RPC span continues the caller's span");
  for (let i = 1; i < chain.length; i++) {
    assert.equal(chain[i]!.parentSpanId, chain[i - 1]!.spanContext().spanId, `${chain[i]!.name} is a child of ${chain[i - 1]!.name}`);
  }
  assert.equal(rpc.attributes["rpc.method"], "TestServerConnection");
  assert.equal(ssh.attributes["axion.ssh.exit_code"], 0);
  // The other RPCs of this test are their own server spans in the same trace.
  assert.ok(spans.some((s) => s.name === "axion.infrastructure.v1.ServerService/CreateServer" && s.spanContext().traceId === traceId));

  const secrets = [passphrase, token, ...key.privateKey.split("\n").filter((l) => l.length > 40 && !l.startsWith("-----"))];
  for (const span of spans) {
    const recorded = JSON.stringify({
      name: span.name,
      attributes: span.attributes,
      events: span.events,
      status: span.status,
      resource: span.resource.attributes,
    });
    for (const secret of secrets) assert.ok(!recorded.includes(secret), `a secret in span ${span.name}: ${recorded.slice(0, 300)}`);
  }
});

test("with OTEL_EXPORTER_OTLP_ENDPOINT set, spans are exported over OTLP/HTTP to <endpoint>/v1/traces", async () => {
  const received: { path: string; type: string; bytes: number }[] = [];
  const collector: Server = createServer((req, res) => {
    let bytes = 0;
    req.on("data", (c: Buffer) => {
      bytes += c.length;
    });
    req.on("end", () => {
      received.push({ path: req.url ?? "", type: String(req.headers["content-type"]), bytes });
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
  try {
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    const script = `import { trace } from "@opentelemetry/api";
import { startTracing, stopTracing } from "./observability/tracing.ts";
await startTracing({ endpoint: ${JSON.stringify(endpoint)}, serviceName: "axion-otlp-test", role: "api" });
trace.getTracer("t").startActiveSpan("one", (s) => s.end());
await stopTracing();`;
    // Not execFileSync: this process' collector must answer while the child exports.
    const child = await promisify(execFile)(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8",
    });
    assert.equal(child.stderr, "");
  } finally {
    await new Promise((r) => collector.close(r));
  }
  assert.equal(received.length, 1, JSON.stringify(received));
  assert.equal(received[0]?.path, "/v1/traces");
  assert.equal(received[0]?.type, "application/x-protobuf");
  assert.ok((received[0]?.bytes ?? 0) > 0);
});
