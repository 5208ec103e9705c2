import assert from "node:assert/strict";
import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import { connect as connectTcp } from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createGzip } from "node:zlib";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createRateLimiter } from "../core/kernel/rate-limit.js";
import { finishOperation, startOperation } from "../core/operations/operations.js";
import { AgentService } from "../gen/axion/infrastructure/v1/agent_service_pb.js";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { type Protocol, startTestApi, type TestApi } from "./support/api.js";
import { expectCode } from "./support/assertions.js";

const MiB = 1024 * 1024;
const BOMB_INFLATED_BYTES = 300 * MiB;
/** Far below the 300 MB a bomb inflates to, far above what refusing it may cost. */
const RSS_BOUND = 64 * MiB;

/** Short timeouts so the tests see them act; production defaults are in core/kernel/config.ts. */
const limits = {
  firstByteTimeoutMs: 300,
  headersTimeoutMs: 500,
  requestTimeoutMs: 1000,
  idleTimeoutMs: 500,
  watchStreamsPerOwner: 2,
  connectionTests: { burst: 3, perMinute: 1 },
  provisioningStarts: { burst: 5, perMinute: 1 },
};
/** Longer than every timeout above. */
const PAST_TIMEOUTS_MS = 2500;

const LIST_CLUSTERS = "/axion.infrastructure.v1.ClusterService/ListClusters";
const WATCH_OPERATION = "/axion.infrastructure.v1.OperationService/WatchOperation";
const HEARTBEAT = "/axion.infrastructure.v1.AgentService/Heartbeat";
const REGISTER = "/axion.infrastructure.v1.AgentService/Register";

/** gzip of prefix + `size` bytes of `fill` + suffix, compressed as it is generated (never held inflated). */
async function gzipOf(prefix: Buffer, fill: number, size: number, suffix: Buffer): Promise<Buffer> {
  const gzip = createGzip();
  const out: Buffer[] = [];
  gzip.on("data", (chunk: Buffer) => out.push(chunk));
  const chunk = Buffer.alloc(MiB, fill);
  gzip.write(prefix);
  for (let written = 0; written < size; written += chunk.length) {
    if (!gzip.write(chunk.subarray(0, Math.min(chunk.length, size - written)))) await once(gzip, "drain");
  }
  gzip.end(suffix);
  await once(gzip, "end");
  return Buffer.concat(out);
}

/** A valid JSON request (`{}` padded with whitespace) of `size` bytes once inflated. */
const jsonBomb = (size: number) => gzipOf(Buffer.from("{"), 0x20, size - 2, Buffer.from("}"));

/** A valid binary request (one unknown bytes field) of about `size` bytes once inflated. */
function protoBomb(size: number): Promise<Buffer> {
  const varint = (n: number) => {
    const bytes: number[] = [];
    while (n > 0x7f) {
      bytes.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    bytes.push(n);
    return Buffer.from(bytes);
  };
  return gzipOf(Buffer.concat([varint((1000 << 3) | 2), varint(size)]), 0, size, Buffer.alloc(0));
}

const envelope = (flags: number, payload: Buffer) => {
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
};

/** How far this process' resident memory rose above where it was while `work` ran. */
async function rssGrowth(work: () => Promise<void>): Promise<number> {
  const base = process.memoryUsage.rss();
  let peak = base;
  const sample = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 2);
  try {
    await work();
  } finally {
    clearInterval(sample);
  }
  return Math.max(peak, process.memoryUsage.rss()) - base;
}

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  trailers: Record<string, string | string[] | undefined>;
  /** HTTP/2: the code the stream was reset with (0 when it ended normally). */
  rstCode?: number;
}

/** One HTTP/1.1 request; `body: undefined` sends the headers only and never the body they announce. */
function h1Request(port: number, path: string, headers: Record<string, string>, body?: Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    if (body) req.end(body);
    else req.flushHeaders();
  });
}

/** One HTTP/2 request on its own session; `body: undefined` leaves the request stream open and empty. */
function h2Request(baseUrl: string, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(baseUrl);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ...headers });
    let answer: RawAnswer = { status: 0, headers: {}, body: Buffer.alloc(0), trailers: {} };
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      answer = { ...answer, status: Number(h[":status"]), headers: h };
    });
    stream.on("trailers", (t) => {
      answer.trailers = t;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("close", () => {
      session.close();
      resolve({ ...answer, body: Buffer.concat(chunks), rstCode: stream.rstCode });
    });
    stream.on("error", () => undefined);
    if (body) stream.end(body);
  });
}

const grpcStatus = (answer: RawAnswer) => Number(answer.trailers["grpc-status"] ?? answer.headers["grpc-status"]);
const connectCode = (answer: RawAnswer) => (JSON.parse(answer.body.toString("utf8")) as { code: string }).code;

/** Rejects when `promise` has not settled within `ms`: the behaviour under test must happen without waiting for more. */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  return Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`${what}: nothing within ${ms} ms`)))]);
}

describe("limits at the API edge", () => {
  let api: TestApi;
  let token: string;
  let ownerId: string;
  let jsonBomb300: Buffer;
  let protoBomb300: Buffer;

  before(async () => {
    api = await startTestApi({ limits });
    ({ token, ownerId } = await api.newOwner());
    jsonBomb300 = await jsonBomb(BOMB_INFLATED_BYTES);
    protoBomb300 = await protoBomb(BOMB_INFLATED_BYTES);
    assert.ok(jsonBomb300.length < 400 * 1024 && protoBomb300.length < 400 * 1024, "the bombs are a few hundred KB on the wire");
  });
  after(async () => {
    await api?.close();
  });

  const agentClient = (bearer: string) => {
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${bearer}`);
      return next(req);
    };
    return createClient(AgentService, createConnectTransport({ baseUrl: api.baseUrl, httpVersion: "1.1", interceptors: [auth] }));
  };
  let hostCounter = 1;
  const newServer = async (bearer: string) => {
    const { clusters, servers } = api.clients(bearer);
    const cluster = (await clusters.createCluster({ name: `c-${Math.random().toString(36).slice(2, 10)}` })).cluster!;
    return (
      await servers.createServer({
        clusterId: cluster.id,
        name: `s-${Math.random().toString(36).slice(2, 10)}`,
        host: `10.98.0.${hostCounter++}`,
        credential: { method: { case: "password", value: "not-used" } },
      })
    ).server!;
  };
  const runningOperation = async (owner: string, serverId: string) =>
    startOperation(api.database.db, { id: owner, name: "test", role: "admin" }, serverId, "test_connection");

  test("a gzip bomb without a token is Unauthenticated and never inflated (Connect and gRPC)", async () => {
    let connectAnswer: RawAnswer | undefined;
    let grpcAnswer: RawAnswer | undefined;
    const growth = await rssGrowth(async () => {
      connectAnswer = await h1Request(
        api.port,
        LIST_CLUSTERS,
        { "content-type": "application/json", "content-encoding": "gzip" },
        jsonBomb300,
      );
      grpcAnswer = await h2Request(
        api.baseUrl,
        { ":path": LIST_CLUSTERS, "content-type": "application/grpc+proto", "grpc-encoding": "gzip", te: "trailers" },
        envelope(1, protoBomb300),
      );
    });
    assert.equal(connectAnswer?.status, 401);
    assert.equal(connectCode(connectAnswer!), "unauthenticated");
    assert.equal(grpcStatus(grpcAnswer!), Code.Unauthenticated);
    assert.ok(growth < RSS_BOUND, `RSS grew by ${Math.round(growth / MiB)} MB for two ${BOMB_INFLATED_BYTES / MiB} MB bombs`);
  });

  test("a gzip bomb with a valid token is ResourceExhausted after 1 MiB inflated (Connect and gRPC)", async () => {
    let connectAnswer: RawAnswer | undefined;
    let grpcAnswer: RawAnswer | undefined;
    const growth = await rssGrowth(async () => {
      connectAnswer = await h1Request(
        api.port,
        LIST_CLUSTERS,
        { "content-type": "application/json", "content-encoding": "gzip", authorization: `Bearer ${token}` },
        jsonBomb300,
      );
      grpcAnswer = await h2Request(
        api.baseUrl,
        {
          ":path": LIST_CLUSTERS,
          "content-type": "application/grpc+proto",
          "grpc-encoding": "gzip",
          te: "trailers",
          authorization: `Bearer ${token}`,
        },
        envelope(1, protoBomb300),
      );
    });
    assert.equal(connectCode(connectAnswer!), "resource_exhausted");
    assert.equal(grpcStatus(grpcAnswer!), Code.ResourceExhausted);
    assert.ok(growth < RSS_BOUND, `RSS grew by ${Math.round(growth / MiB)} MB for two ${BOMB_INFLATED_BYTES / MiB} MB bombs`);
  });

  test("owner RPCs take up to 1 MiB inflated, agent RPCs up to 64 KiB (through the Connect router)", async () => {
    const owner = { "content-type": "application/json", "content-encoding": "gzip", authorization: `Bearer ${token}` };
    assert.equal((await h1Request(api.port, LIST_CLUSTERS, owner, await jsonBomb(900 * 1024))).status, 200, "900 KiB is accepted");
    assert.equal(connectCode(await h1Request(api.port, LIST_CLUSTERS, owner, await jsonBomb(MiB + 1024))), "resource_exhausted");

    // Compressed, so the HTTP/1.1 heartbeat fast path leaves them to the router.
    const agent = { "content-type": "application/json", "content-encoding": "gzip", authorization: "Bearer not-an-agent-token" };
    for (const path of [HEARTBEAT, REGISTER]) {
      const small = await h1Request(api.port, path, agent, await jsonBomb(60 * 1024));
      assert.match(connectCode(small), /^(unauthenticated|invalid_argument)$/, `${path}: 60 KiB reaches the handler's checks`);
      const large = await h1Request(api.port, path, agent, await jsonBomb(65 * 1024));
      assert.equal(connectCode(large), "resource_exhausted", `${path}: 65 KiB is refused`);
    }
  });

  test("a request without a well-formed bearer is refused before its body arrives, in each protocol's error format", async () => {
    const announced = { "content-length": String(10 * MiB) };
    const connectUnary = await within(
      2000,
      h1Request(api.port, LIST_CLUSTERS, { ...announced, "content-type": "application/json" }),
      "Connect unary",
    );
    assert.equal(connectUnary.status, 401);
    assert.equal(connectCode(connectUnary), "unauthenticated");

    const connectStream = await within(
      2000,
      h1Request(api.port, WATCH_OPERATION, { ...announced, "content-type": "application/connect+json", authorization: "Basic abc" }),
      "Connect streaming",
    );
    assert.equal(connectStream.status, 200, "Connect streams carry errors in the end-of-stream message");
    assert.equal(connectStream.body.readUInt8(0), 2, "an end-of-stream envelope");
    const end = JSON.parse(connectStream.body.subarray(5).toString("utf8")) as { error: { code: string; message: string } };
    assert.equal(end.error.code, "unauthenticated");

    const grpcWeb = await within(
      2000,
      h1Request(api.port, LIST_CLUSTERS, { ...announced, "content-type": "application/grpc-web+proto" }),
      "gRPC-Web",
    );
    assert.equal(grpcStatus(grpcWeb), Code.Unauthenticated);

    const grpc = await within(
      2000,
      h2Request(api.baseUrl, { ":path": LIST_CLUSTERS, "content-type": "application/grpc+proto", te: "trailers", authorization: "Bearer" }),
      "gRPC",
    );
    assert.equal(grpcStatus(grpc), Code.Unauthenticated);

    // The generated clients read each format back as the same error.
    for (const protocol of ["connect", "grpc", "grpc-web"] as Protocol[]) {
      await expectCode(api.clients(undefined, protocol).clusters.listClusters({}), Code.Unauthenticated, /missing bearer token/);
      await expectCode(api.clients("axn_unknown", protocol).clusters.listClusters({}), Code.Unauthenticated, /invalid bearer token/);
    }
    const watch = api.clients(undefined).operations.watchOperation({ id: "00000000-0000-7000-8000-000000000000" });
    await expectCode(watch[Symbol.asyncIterator]().next(), Code.Unauthenticated, /missing bearer token/);
  });

  test("a connection that never sends a byte is closed after the first-byte timeout", async () => {
    const socket = connectTcp(api.port, "127.0.0.1");
    await once(socket, "connect");
    const started = Date.now();
    await within(PAST_TIMEOUTS_MS, once(socket, "close"), "close of a silent connection");
    assert.ok(Date.now() - started >= limits.firstByteTimeoutMs - 50, "not before the timeout");
  });

  test("HTTP/1.1: headers that never end are answered 408 after the headers timeout; so is a body that never ends", async () => {
    for (const [what, head, drip] of [
      ["headers", "POST / HTTP/1.1\r\nHost: x\r\n", "X-A: b\r\n"],
      [
        "body",
        `POST ${LIST_CLUSTERS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
        " ",
      ],
    ] as const) {
      const socket = connectTcp(api.port, "127.0.0.1");
      await once(socket, "connect");
      let answer = "";
      socket.on("data", (c: Buffer) => {
        answer += c.toString("latin1");
      });
      socket.write(head);
      const dripping = setInterval(() => socket.write(drip), 100);
      try {
        await within(PAST_TIMEOUTS_MS, once(socket, "close"), `close of a dribbling ${what}`);
      } finally {
        clearInterval(dripping);
      }
      assert.match(answer, /^HTTP\/1\.1 408/, what);
    }
  });

  test("HTTP/2: 100 streams per session, a session without streams is closed after the idle timeout, a request stream that never ends is reset", async () => {
    const session = http2.connect(api.baseUrl);
    const [settings] = (await once(session, "remoteSettings")) as [http2.Settings];
    assert.equal(settings.maxConcurrentStreams, 100, "a session may open 100 streams at once");
    const health = session.request({ ":path": "/healthz" });
    health.resume();
    await once(health, "close");
    await within(PAST_TIMEOUTS_MS, once(session, "close"), "close of an idle HTTP/2 session");

    const stalled = await within(
      PAST_TIMEOUTS_MS,
      h2Request(api.baseUrl, {
        ":path": LIST_CLUSTERS,
        "content-type": "application/grpc+proto",
        te: "trailers",
        authorization: `Bearer ${token}`,
      }),
      "reset of a request stream without its body",
    );
    assert.equal(stalled.rstCode, http2.constants.NGHTTP2_CANCEL, "the stalled request stream is reset");
  });

  test("a WatchOperation stream open longer than every timeout still gets its final update (Connect on HTTP/1.1, gRPC on HTTP/2)", async () => {
    const server = await newServer(token);
    for (const protocol of ["connect", "grpc"] as Protocol[]) {
      const operation = await runningOperation(ownerId, server.id);
      const stream = api.clients(token, protocol).operations.watchOperation({ id: operation.id })[Symbol.asyncIterator]();
      assert.equal((await stream.next()).value?.operation?.status, OperationStatus.RUNNING, protocol);
      await sleep(PAST_TIMEOUTS_MS);
      await finishOperation(api.database.db, operation.id, { status: "SUCCEEDED" });
      const final = await within(PAST_TIMEOUTS_MS, stream.next(), `${protocol}: final update`);
      assert.equal(final.value?.operation?.status, OperationStatus.SUCCEEDED, protocol);
      assert.equal((await stream.next()).done, true, `${protocol}: the stream ends`);
    }
  });

  test("the owner's (N+1)th open WatchOperation stream is ResourceExhausted; another owner still opens one; a closed stream frees its slot", async () => {
    const server = await newServer(token);
    const bob = await api.newOwner();
    const bobServer = await newServer(bob.token);
    const open = async (bearer: string, owner: string, serverId: string, signal?: AbortSignal) => {
      const operation = await runningOperation(owner, serverId);
      const stream = api.clients(bearer).operations.watchOperation({ id: operation.id }, { signal })[Symbol.asyncIterator]();
      await stream.next();
      return stream;
    };
    const aborts = Array.from({ length: limits.watchStreamsPerOwner }, () => new AbortController());
    for (const abort of aborts) await open(token, ownerId, server.id, abort.signal);
    const refused = await expectCode(open(token, ownerId, server.id), Code.ResourceExhausted, /WatchOperation/);
    assert.match(refused.rawMessage, /WATCH_STREAMS_PER_OWNER/, "the message names the limit");

    const bobs = new AbortController();
    await open(bob.token, bob.ownerId, bobServer.id, bobs.signal);

    aborts[0]!.abort();
    let reopened: Awaited<ReturnType<typeof open>> | undefined;
    const freeing = new AbortController();
    for (let attempt = 0; attempt < 50 && !reopened; attempt++) {
      reopened = await open(token, ownerId, server.id, freeing.signal).catch((error: unknown) => {
        if (!(error instanceof ConnectError && error.code === Code.ResourceExhausted)) throw error;
        return sleep(100).then(() => undefined);
      });
    }
    assert.ok(reopened, "a slot is free again once a stream is closed");
    for (const abort of [...aborts, bobs, freeing]) abort.abort();
  });

  test("connection tests beyond the owner's burst are ResourceExhausted for that owner only; provisioning starts have their own bucket", async () => {
    const alice = await api.newOwner();
    const bob = await api.newOwner();
    const aliceServer = await newServer(alice.token);
    const bobServer = await newServer(bob.token);
    const { servers } = api.clients(alice.token);
    // This API has no Temporal, so an admitted call is answered Unavailable by its handler.
    for (let i = 0; i < limits.connectionTests.burst; i++)
      await expectCode(servers.testServerConnection({ id: aliceServer.id }), Code.Unavailable);
    const limited = await expectCode(servers.testServerConnection({ id: aliceServer.id }), Code.ResourceExhausted, /connection tests/);
    assert.match(limited.rawMessage, /CONNECTION_TEST_BURST/, "the message names the limit");
    await expectCode(
      api.clients(bob.token).servers.testServerConnection({ id: bobServer.id }),
      Code.Unavailable,
      /Temporal|workflow|provisioning/i,
    );

    const agents = agentClient(alice.token);
    const starts = [
      () => servers.configureServer({ id: aliceServer.id }),
      () => servers.setupDeployKey({ id: aliceServer.id }),
      () => servers.recoverServer({ id: aliceServer.id }),
      () => servers.reinstallServer({ id: aliceServer.id, os: "debian-12" }),
      () => agents.installAgent({ id: aliceServer.id }),
    ];
    assert.equal(starts.length, limits.provisioningStarts.burst);
    for (const start of starts) {
      const error = await start().then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      assert.notEqual(error?.code, Code.ResourceExhausted, "within the burst, after the connection tests ran out");
    }
    for (const start of starts) await expectCode(start(), Code.ResourceExhausted, /provisioning starts.*PROVISIONING_BURST/);
    await expectCode(api.clients(bob.token).servers.configureServer({ id: bobServer.id }), Code.Unavailable);
  });

  test("a bucket refills at its rate up to its burst, per key", () => {
    let now = 0;
    const limiter = createRateLimiter({ burst: 2, perMinute: 6 }, () => now);
    assert.equal(limiter.take("a"), 0);
    assert.equal(limiter.take("a"), 0);
    assert.equal(limiter.take("a"), 10_000, "empty: the next call in 10 s (6 per minute)");
    assert.equal(limiter.take("b"), 0, "another key has its own bucket");
    now = 10_000;
    assert.equal(limiter.take("a"), 0, "one call refilled");
    assert.ok(limiter.take("a") > 0);
    now = 10 * 60_000;
    assert.equal(limiter.take("a"), 0);
    assert.equal(limiter.take("a"), 0);
    assert.ok(limiter.take("a") > 0, "refills no further than the burst");
  });
});
