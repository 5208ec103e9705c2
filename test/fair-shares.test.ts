import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { Client, Connection } from "@temporalio/client";
import { and, eq } from "drizzle-orm";
import { startOperation } from "../core/operations/operations.js";
import { normaliseStrategy } from "../core/rollouts/rollout-strategy.js";
import { createRollout } from "../core/rollouts/rollouts.js";
import { KeyParsingPool } from "../core/security/key-parsing.js";
import { newId } from "../db/ids.js";
import { rolloutServers } from "../db/schema.js";
import { RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { clientInterceptors } from "../temporal/client.js";
import { type RunningDevServer, startDevServer } from "../temporal/dev-server.js";
import { startTestApi, type TestApi } from "./support/api.js";
import { expectCode } from "./support/assertions.js";
import { ed25519KeyPair } from "./support/keys.js";
import { freePort } from "./support/ports.js";

// Per-owner shares of what every organization shares: key-parsing threads, server writes, plan checks,
// connection probes, Temporal queries. Each test measures by events (answers, counted calls), never by time.

const PASSPHRASE = "correct horse";
/** At the KDF cap (64 rounds): ~0.7 s of one thread per parse. */
const slowKey = ed25519KeyPair(PASSPHRASE, 64);
const password = { method: { case: "password" as const, value: "secret" } };
const slowCredential = { method: { case: "privateKey" as const, value: { key: slowKey.privateKey, passphrase: PASSPHRASE } } };
const codeOf = (error: unknown) => (error instanceof ConnectError ? error.code : undefined);

/** The pool every key of the test API goes through; resolves `arrived(n)` once n keys were handed to it (queued or refused). */
class CountingPool extends KeyParsingPool {
  calls = 0;
  private readonly waiters: { n: number; resolve: () => void }[] = [];
  override prepare(...args: Parameters<KeyParsingPool["prepare"]>): ReturnType<KeyParsingPool["prepare"]> {
    const answer = super.prepare(...args);
    this.calls += 1;
    for (const w of this.waiters.filter((w) => w.n <= this.calls)) w.resolve();
    return answer;
  }
  arrived(n: number): Promise<void> {
    if (this.calls >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

describe("fair shares at the API (PGlite, no Temporal)", { timeout: 5 * 60_000 }, () => {
  let api: TestApi;
  let pool: CountingPool;
  let n = 0;

  before(async () => {
    pool = new CountingPool({ threads: 1, deadlineMs: 30_000, maxPerOwner: 4 });
    api = await startTestApi({
      keyParsing: pool,
      limits: {
        serverWrites: { burst: 100, perMinute: 1 },
        planChecks: { burst: 5, perMinute: 1 },
        connectionTests: { burst: 5, perMinute: 1 },
      },
    });
  });
  after(async () => {
    await api?.close();
    await pool?.close();
  });

  const ownerWithCluster = async () => {
    const owner = await api.newOwner();
    const clients = api.clients(owner.token);
    const clusterId = (await clients.clusters.createCluster({ name: `c-${++n}` })).cluster!.id;
    return { ...owner, clients, clusterId };
  };
  const serverIn = (o: Awaited<ReturnType<typeof ownerWithCluster>>, credential: object = password) =>
    o.clients.servers.createServer({ clusterId: o.clusterId, name: `s-${++n}`, host: `203.0.113.${n % 250}`, credential } as never);

  test("owner B's CreateServer with an encrypted key waits for about one parse while owner A has 40 slow keys in flight", async () => {
    const a = await ownerWithCluster();
    const b = await ownerWithCluster();
    const events: string[] = [];
    const before = pool.calls;
    const floods = Array.from({ length: 40 }, () =>
      serverIn(a, slowCredential).then(
        () => events.push("A parsed"),
        (error: unknown) => {
          events.push(codeOf(error) === Code.ResourceExhausted ? "A refused" : "A parsed");
          if (codeOf(error) !== Code.ResourceExhausted) throw error;
          assert.match(
            (error as ConnectError).rawMessage,
            /at most \d+ per owner \(SSH_KEY_PARSE_PER_OWNER\)/,
            "the refusal names the limit",
          );
        },
      ),
    );
    // Every one of A's keys has reached the pool (queued, parsing or refused) before B's arrives.
    await pool.arrived(before + 40);
    const started = performance.now();
    await serverIn(b, slowCredential);
    const waited = performance.now() - started;
    const parsedBeforeB = events.filter((e) => e === "A parsed").length;
    events.push("B answered");
    await Promise.all(floods);
    console.log(`B's CreateServer answered after ${waited.toFixed(0)} ms; ${parsedBeforeB} of A's keys were parsed before it`);
    assert.ok(parsedBeforeB <= 2, `B waited for at most the parse running when it came (A's parsed before B: ${parsedBeforeB})`);
    assert.ok(events.filter((e) => e === "A parsed").length >= 1, "A's keys are parsed too, within A's share");
  });

  test("CreateServer and UpdateServer are rate limited per owner, naming the limit; another owner is unaffected", async () => {
    const limited = await startTestApi({ limits: { serverWrites: { burst: 3, perMinute: 1 } } });
    try {
      const a = await limited.newOwner();
      const clients = limited.clients(a.token);
      const clusterId = (await clients.clusters.createCluster({ name: `w-${++n}` })).cluster!.id;
      const create = () =>
        clients.servers.createServer({ clusterId, name: `w-${++n}`, host: `198.51.100.${n % 250}`, credential: password });
      const first = (await create()).server!;
      await create();
      await clients.servers.updateServer({ id: first.id, name: `renamed-${n}` });
      await expectCode(create(), Code.ResourceExhausted, /server creates and updates.*SERVER_WRITE_BURST, SERVER_WRITES_PER_MINUTE/);
      await expectCode(clients.servers.updateServer({ id: first.id, name: "again" }), Code.ResourceExhausted, /SERVER_WRITE_BURST/);
      const b = limited.clients((await limited.newOwner()).token);
      const other = (await b.clusters.createCluster({ name: `w-${++n}` })).cluster!.id;
      assert.ok((await b.servers.createServer({ clusterId: other, name: "b", host: "198.51.100.251", credential: password })).server);
    } finally {
      await limited.close();
    }
  });

  test("plans are charged per server checked: PlanServer one, PlanRollout with checks one per target, refused up front", async () => {
    const a = await ownerWithCluster();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await serverIn(a)).server!.id);
    // Over the burst (5): refused whole, naming the limit, before any login.
    await expectCode(
      a.clients.rollouts.planRollout({ kind: RolloutKind.CONFIGURE, target: { clusterId: a.clusterId }, checks: true }),
      Code.ResourceExhausted,
      /plan checks.*needs 6.*PLAN_CHECK_BURST, PLAN_CHECKS_PER_MINUTE/,
    );
    // Without checks a plan logs in nowhere: not charged.
    await a.clients.rollouts.planRollout({ kind: RolloutKind.CONFIGURE, target: { clusterId: a.clusterId } });
    // Admitted calls reach the handler, which answers Unavailable on this API without Temporal.
    await expectCode(
      a.clients.rollouts.planRollout({ kind: RolloutKind.CONFIGURE, target: { serverIds: ids.slice(0, 3) }, checks: true }),
      Code.Unavailable,
    );
    await expectCode(a.clients.servers.planServer({ id: ids[0]!, kind: RolloutKind.CONFIGURE }), Code.Unavailable);
    await expectCode(a.clients.servers.planServer({ id: ids[0]!, kind: RolloutKind.CONFIGURE }), Code.Unavailable);
    await expectCode(
      a.clients.servers.planServer({ id: ids[0]!, kind: RolloutKind.CONFIGURE }),
      Code.ResourceExhausted,
      /PLAN_CHECK_BURST/,
    );
    const b = await ownerWithCluster();
    const bs = (await serverIn(b)).server!;
    await expectCode(b.clients.servers.planServer({ id: bs.id, kind: RolloutKind.CONFIGURE }), Code.Unavailable);
  });
});

describe("fair shares with Temporal (dev server, no worker)", { timeout: 2 * 60_000 }, () => {
  let api: TestApi;
  let dev: RunningDevServer;
  let connection: Connection;
  let dataDir: string;
  let client: Client;
  const taskQueue = "fair-shares-no-worker";
  /** Progress queries made through the API's client, and the most in flight at once. */
  const queries = { made: 0, inFlight: 0, maxInFlight: 0 };
  let n = 0;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "axion-fair-"));
    dev = await startDevServer(dataDir, { port: await freePort(), uiPort: await freePort(), headless: true });
    connection = await Connection.connect({ address: dev.address });
    client = new Client({ connection, namespace: dev.spec.namespace, interceptors: clientInterceptors() });
    // The API's real client, with every workflow query counted on its way to the dev server.
    const counted = new Proxy(client.workflow, {
      get(target, prop, receiver) {
        if (prop !== "getHandle") return Reflect.get(target, prop, receiver);
        return (...args: Parameters<typeof target.getHandle>) => {
          const handle = target.getHandle(...args);
          return new Proxy(handle, {
            get(h, p, r) {
              if (p !== "query") return Reflect.get(h, p, r);
              return async (...q: Parameters<typeof h.query>) => {
                queries.made += 1;
                queries.inFlight += 1;
                queries.maxInFlight = Math.max(queries.maxInFlight, queries.inFlight);
                try {
                  return await h.query(...q);
                } finally {
                  queries.inFlight -= 1;
                }
              };
            },
          });
        };
      },
    });
    const apiClient = new Proxy(client, { get: (t, p, r) => (p === "workflow" ? counted : Reflect.get(t, p, r)) });
    api = await startTestApi({
      workflows: { client: apiClient, taskQueue },
      limits: { connectionTests: { burst: 20, perMinute: 1 }, rolloutQueriesPerOwner: 6 },
    });
  });
  after(async () => {
    await api?.close();
    await connection?.close();
    await dev?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const ownerWithServers = async (count: number) => {
    const owner = await api.newOwner();
    const clients = api.clients(owner.token);
    const clusterId = (await clients.clusters.createCluster({ name: `q-${++n}` })).cluster!.id;
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      ids.push(
        (await clients.servers.createServer({ clusterId, name: `q-${++n}`, host: `203.0.113.${n % 250}`, credential: password })).server!
          .id,
      );
    }
    return { ...owner, clients, clusterId, ids };
  };

  test("a test-connection rollout is charged per probe against the connection-test budget, refused up front", async () => {
    const a = await ownerWithServers(25);
    const rolloutsOf = async () => (await a.clients.rollouts.listRollouts({})).rollouts.length;
    await expectCode(
      a.clients.rollouts.startRollout({ kind: RolloutKind.TEST_CONNECTION, target: { clusterId: a.clusterId } }),
      Code.ResourceExhausted,
      /connection tests: this call needs 25.*CONNECTION_TEST_BURST, CONNECTION_TESTS_PER_MINUTE/,
    );
    assert.equal(await rolloutsOf(), 0, "nothing written, nothing started");
    const started = (
      await a.clients.rollouts.startRollout({ kind: RolloutKind.TEST_CONNECTION, target: { serverIds: a.ids.slice(0, 15) } })
    ).rollout!;
    await expectCode(
      a.clients.rollouts.startRollout({ kind: RolloutKind.TEST_CONNECTION, target: { serverIds: a.ids.slice(15, 25) } }),
      Code.ResourceExhausted,
      /connection tests reached: this call needs 10/,
    );
    const rest = (await a.clients.rollouts.startRollout({ kind: RolloutKind.TEST_CONNECTION, target: { serverIds: a.ids.slice(15, 20) } }))
      .rollout!;
    // The single test shares the budget: 15 + 5 probes have used it up.
    await expectCode(a.clients.servers.testServerConnection({ id: a.ids[20]! }), Code.ResourceExhausted, /CONNECTION_TEST_BURST/);
    assert.equal(await rolloutsOf(), 2);
    for (const r of [started, rest]) await client.workflow.getHandle(r.workflowId).terminate("test over");
  });

  test("concurrent reads of one rollout share one round of Temporal queries; an owner's queries in flight are bounded", async () => {
    const a = await ownerWithServers(15);
    const owner = { id: a.ownerId } as never;
    const runningRollout = async (serverIds: string[]) => {
      const id = newId();
      await createRollout(api.database.db, {
        id,
        ownerId: a.ownerId,
        kind: "configure",
        target: { serverIds },
        strategy: { ...normaliseStrategy({}) },
        options: {},
        servers: serverIds.map((s, i) => ({ id: s, name: `q-${i}`, batch: 0 })),
        batchCount: 1,
      } as never);
      for (const [position, serverId] of serverIds.entries()) {
        // Operations whose workflows do not exist: each query is still one real round trip to Temporal.
        const operation = await startOperation(api.database.db, owner, serverId, "bootstrap");
        await api.database.db
          .update(rolloutServers)
          .set({ state: "RUNNING", operationId: operation.id })
          .where(and(eq(rolloutServers.rolloutId, id), eq(rolloutServers.position, position)));
      }
      return id;
    };
    const first = await runningRollout(a.ids.slice(0, 5));
    queries.made = 0;
    const reads = await Promise.all(Array.from({ length: 20 }, () => a.clients.rollouts.getRollout({ id: first })));
    assert.ok(reads.every((r) => r.rollout?.counts?.running === 5));
    console.log(`20 concurrent GetRollout of a rollout with 5 running servers: ${queries.made} Temporal queries`);
    assert.ok(queries.made <= 5, `one round of 5 queries shared by 20 readers (made ${queries.made})`);

    // Two other rollouts of the owner, 10 running servers, read at once: their queries share the owner's bound.
    const others = [await runningRollout(a.ids.slice(5, 10)), await runningRollout(a.ids.slice(10, 15))];
    queries.made = 0;
    queries.maxInFlight = 0;
    await Promise.all(others.flatMap((id) => Array.from({ length: 5 }, () => a.clients.rollouts.getRollout({ id }))));
    console.log(`reads of two rollouts (10 running servers): ${queries.made} queries, at most ${queries.maxInFlight} in flight`);
    assert.ok(queries.maxInFlight <= 6, `at most ROLLOUT_QUERIES_PER_OWNER (6) in flight for one owner (was ${queries.maxInFlight})`);
  });
});
