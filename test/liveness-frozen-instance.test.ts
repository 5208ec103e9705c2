import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { asc, eq } from "drizzle-orm";
import { issueAgentToken } from "../core/agents/agent-tokens.js";
import { sweepLiveness } from "../core/agents/liveness.js";
import { type DatabaseHandle, openDatabase } from "../db/client.js";
import { outboxEvents, servers } from "../db/schema.js";
import { ClusterService } from "../gen/axion/infrastructure/v1/cluster_service_pb.js";
import { ServerService } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { type RunningDevServer, startDevServer } from "../temporal/dev-server.js";
import { testCredentialsKey } from "./support/api.js";
import { ed25519KeyPair } from "./support/keys.js";
import { freePort } from "./support/ports.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";
import { type ServiceProcess, startServiceProcess, waitForHealthy } from "./support/service-process.js";

/**
 * Liveness with two API processes (`main.ts api`, each its own process group) when the one some agents
 * talk to is frozen (SIGSTOP), crashes (SIGKILL) or stops (SIGTERM). The agents are HTTP heartbeat
 * clients that behave like the Go agent: one heartbeat at a time, the next a second after the answer,
 * a request given up after 15 s and sent again. The sweep is the monitor's statement, run every second.
 */
const T = 5;
const FREEZE_S = 90;
const adminToken = "frozen-instance-test-admin-0001";
const key = ed25519KeyPair();
let pg: TestPostgres;
let dev: RunningDevServer;
let devDir: string;
let logDir: string;
let database: DatabaseHandle;
const ports: number[] = [];
const apis: ServiceProcess[] = [];
const baseUrl = (i: number) => `http://127.0.0.1:${ports[i]}`;

function startApi(i: number): ServiceProcess {
  const p = startServiceProcess(
    "api",
    {
      DATABASE_URL: pg.url,
      TEMPORAL_ADDRESS: dev.address,
      TEMPORAL_NAMESPACE: dev.spec.namespace,
      CREDENTIALS_KEY: testCredentialsKey,
      AXION_ADMIN_TOKEN: adminToken,
      AGENT_HEARTBEAT_INTERVAL: "1",
      AGENT_HEARTBEAT_TIMEOUT: String(T),
      LOG_LEVEL: "warn",
      PORT: String(ports[i]),
    },
    logDir,
    `api${i + 1}-${Date.now()}`,
  );
  apis[i] = p;
  return p;
}

/** A status change as the sweep announced it (`server.status_changed` in the outbox), with when the test saw it. */
interface Change {
  serverId: string;
  to: string;
  seenAt: number;
}

/** Sweeps every second, as the heartbeat monitor does, and hands on every status change from the outbox in order. */
function startSweeper(options: { instanceDeadAfterSeconds: number }) {
  const listeners = new Set<(c: Change) => void>();
  const seen = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  let running = true;
  let failure: unknown;
  const loop = (async () => {
    while (running) {
      await sweepLiveness(database.db, T, options);
      // The outbox is append-only: reading all of this test's status events and skipping the ones seen is a stream.
      const rows = await database.db
        .select()
        .from(outboxEvents)
        .where(eq(outboxEvents.type, "server.status_changed"))
        .orderBy(asc(outboxEvents.createdAt), asc(outboxEvents.id));
      for (const row of rows) {
        if (seen.has(row.id)) continue;
        seen.add(row.id);
        const change = { serverId: row.key, to: String(row.payload.to), seenAt: Date.now() };
        for (const l of listeners) l(change);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })().catch((error) => {
    failure = error;
  });
  return {
    /** Resolves with the first change `match` accepts; rejects once `withinMs` passed without one. */
    next(match: (c: Change) => boolean, withinMs: number, what: string): Promise<Change> {
      return new Promise((resolve, reject) => {
        const listener = (c: Change) => {
          if (!match(c)) return;
          listeners.delete(listener);
          clearTimeout(timer);
          timers.delete(timer);
          resolve(c);
        };
        const timer = setTimeout(() => {
          listeners.delete(listener);
          timers.delete(timer);
          reject(new Error(`${what}: not within ${withinMs} ms`));
        }, withinMs);
        timers.add(timer);
        listeners.add(listener);
      });
    },
    /** Every change `match` accepts, collected until `stop`. */
    collect(match: (c: Change) => boolean): Change[] {
      const seen: Change[] = [];
      listeners.add((c) => {
        if (match(c)) seen.push(c);
      });
      return seen;
    },
    async stop() {
      running = false;
      await loop;
      listeners.clear();
      for (const t of timers) clearTimeout(t);
      if (failure) throw failure;
    },
  };
}

interface Agent {
  serverId: string;
  /** Resolves at the first heartbeat answered after this call. */
  answered(): Promise<void>;
  stop(): Promise<void>;
}

/** One agent: a heartbeat, its answer (or the 15 s request timeout), a second's pause, the next heartbeat; always to `api`. */
function startAgent(serverId: string, token: string, api: number): Agent {
  let running = true;
  let waiters: (() => void)[] = [];
  const loop = (async () => {
    while (running) {
      const ok = await fetch(`${baseUrl(api)}/axion.infrastructure.v1.AgentService/Heartbeat`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ serverId, metrics: { cpuPercent: 1 } }),
        signal: AbortSignal.timeout(15_000),
      }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) {
        for (const w of waiters) w();
        waiters = [];
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return {
    serverId,
    answered: () => new Promise<void>((r) => waiters.push(r)),
    async stop() {
      running = false;
      await loop;
    },
  };
}

const admin = () => {
  const transport = createConnectTransport({
    baseUrl: baseUrl(0),
    httpVersion: "1.1",
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${adminToken}`);
        return next(req);
      },
    ],
  });
  return { clusters: createClient(ClusterService, transport), servers: createClient(ServerService, transport) };
};

let n = 0;
/** Servers with agent tokens, CONFIGURED (an agent's heartbeats then make them ONLINE). */
async function newServers(count: number): Promise<{ id: string; token: string }[]> {
  const client = admin();
  const clusterId = (await client.clusters.createCluster({ name: `frozen-${++n}` })).cluster!.id;
  const made: { id: string; token: string }[] = [];
  for (let i = 0; i < count; i++) {
    const server = (
      await client.servers.createServer({
        clusterId,
        name: `f${n}-${i}`,
        host: `10.79.${n}.${i + 1}`,
        credential: { method: { case: "privateKey", value: { key: key.privateKey } } },
      })
    ).server!;
    await database.db.update(servers).set({ status: "CONFIGURED" }).where(eq(servers.id, server.id));
    made.push({ id: server.id, token: await issueAgentToken(database.db, server.id) });
  }
  return made;
}

/** Starts an agent per server (on the API given for each) and resolves once the sweep has made every one ONLINE. */
async function online(sweeper: ReturnType<typeof startSweeper>, fleet: { id: string; token: string; api: number }[]) {
  const waits = fleet.map((s) => sweeper.next((c) => c.serverId === s.id && c.to === "ONLINE", 30_000, `${s.id} ONLINE`));
  const agents = fleet.map((s) => startAgent(s.id, s.token, s.api));
  await Promise.all(waits);
  return agents;
}

before(async () => {
  logDir = mkdtempSync(join(tmpdir(), "axion-frozen-logs-"));
  devDir = mkdtempSync(join(tmpdir(), "axion-frozen-temporal-"));
  pg = await startPostgres();
  dev = await startDevServer(devDir, { port: await freePort(), uiPort: await freePort(), headless: true });
  ports.push(await freePort(), await freePort());
  await Promise.all([0, 1].map((i) => waitForHealthy(baseUrl(i), startApi(i))));
  database = await openDatabase({ databaseUrl: pg.url, dataDir: "memory://" });
});

after(async () => {
  for (const p of apis) await p?.kill();
  await database?.close();
  await dev?.stop();
  await pg?.stop();
  if (devDir) rmSync(devDir, { recursive: true, force: true });
  if (logDir) console.error(`frozen-instance process logs: ${logDir}`);
});

test("the API four agents talk to frozen for 90 s: none of the five live servers goes OFFLINE; the one silent since the freeze does once the API is back", async (t) => {
  const sweeper = startSweeper({ instanceDeadAfterSeconds: 300 });
  const fleet = await newServers(6);
  // Four agents on API #2, one on API #1, and one on API #1 that falls silent when API #2 freezes.
  const placed = fleet.map((s, i) => ({ ...s, api: i < 4 ? 1 : 0 }));
  const agents = await online(sweeper, placed);
  const live = agents.slice(0, 5);
  const silent = agents[5]!;
  // Ingestion has run longer than the timeout (the service started well before): silence now counts.
  const liveIds = new Set(live.map((a) => a.serverId));
  const falseOffline = sweeper.next((c) => liveIds.has(c.serverId) && c.to === "OFFLINE", 600_000, "a false OFFLINE");
  falseOffline.catch(() => undefined);
  try {
    const silentOffline = sweeper.next(
      (c) => c.serverId === silent.serverId && c.to === "OFFLINE",
      (FREEZE_S + 2 * T + 20) * 1000,
      "silent",
    );
    await silent.stop();
    apis[1]!.signal("SIGSTOP");
    const frozenAt = Date.now();
    // Meanwhile the four agents' heartbeats wait in API #2's sockets; the agent on API #1 is answered throughout.
    const freeze = new Promise((r) => setTimeout(r, FREEZE_S * 1000));
    const outcome = await Promise.race([freeze.then(() => "thawed"), falseOffline]);
    assert.equal(outcome, "thawed", `a live server went OFFLINE ${((Date.now() - frozenAt) / 1000).toFixed(0)} s into the freeze`);
    const answered = live.slice(0, 4).map((a) => a.answered());
    apis[1]!.signal("SIGCONT");
    const thawedAt = Date.now();
    await Promise.all(answered);
    // Real silence: OFFLINE within the timeout and a sweep once the frozen API is back.
    const offline = await silentOffline;
    t.diagnostic(`the silent server went OFFLINE ${(offline.seenAt - thawedAt) / 1000} s after the thaw`);
    assert.ok(
      offline.seenAt - thawedAt <= (T + 2) * 1000,
      `the silent server went OFFLINE ${(offline.seenAt - thawedAt) / 1000} s after the thaw`,
    );
    // Two timeouts after the thaw, still no live server went OFFLINE.
    const calm = await Promise.race([new Promise((r) => setTimeout(r, 2 * T * 1000)).then(() => "calm"), falseOffline]);
    assert.equal(calm, "calm");
  } finally {
    apis[1]!.signal("SIGCONT");
    await Promise.all(agents.map((a) => a.stop()));
    await sweeper.stop();
  }
});

test("an API stopped cleanly (SIGTERM) holds nothing back: silence is judged within the timeout", async (t) => {
  const sweeper = startSweeper({ instanceDeadAfterSeconds: 300 });
  const fleet = await newServers(2);
  const agents = await online(sweeper, [
    { ...fleet[0]!, api: 1 },
    { ...fleet[1]!, api: 0 },
  ]);
  const [stranded, silent] = agents as [Agent, Agent];
  const offline = (a: Agent) => sweeper.next((c) => c.serverId === a.serverId && c.to === "OFFLINE", 60_000, a.serverId);
  const wentOffline = [offline(stranded), offline(silent)];
  try {
    await silent.stop();
    const exited = new Promise((r) => apis[1]!.child.once("exit", r));
    apis[1]!.signal("SIGTERM");
    await exited;
    const stoppedAt = Date.now();
    for (const change of await Promise.all(wentOffline)) {
      const after = (change.seenAt - stoppedAt) / 1000;
      t.diagnostic(`${change.serverId} OFFLINE ${after} s after the API stopped`);
      assert.ok(after <= T + 2, `OFFLINE ${after} s after the API stopped`);
    }
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await sweeper.stop();
    await waitForHealthy(baseUrl(1), startApi(1));
  }
});

// Last: the crashed instance's row would hold back a later test's sweep for its dead-after.
test("an API that crashed (SIGKILL) holds liveness back only until it is declared dead; then its silent agents go OFFLINE", async (t) => {
  const DEAD_AFTER = 20;
  const sweeper = startSweeper({ instanceDeadAfterSeconds: DEAD_AFTER });
  const fleet = await newServers(3);
  // One agent on API #2 (it has nowhere else to go), one live agent on API #1, one on API #1 that falls silent at the crash.
  const agents = await online(sweeper, [
    { ...fleet[0]!, api: 1 },
    { ...fleet[1]!, api: 0 },
    { ...fleet[2]!, api: 0 },
  ]);
  const [stranded, live, silent] = agents as [Agent, Agent, Agent];
  const falseOffline = sweeper.next((c) => c.serverId === live.serverId && c.to === "OFFLINE", 600_000, "a false OFFLINE");
  falseOffline.catch(() => undefined);
  const offline = (a: Agent) =>
    sweeper.next((c) => c.serverId === a.serverId && c.to === "OFFLINE", (DEAD_AFTER + 3 * T + 10) * 1000, a.serverId);
  const wentOffline = [offline(stranded), offline(silent)];
  try {
    await silent.stop();
    await apis[1]!.kill();
    const killedAt = Date.now();
    for (const change of await Promise.all(wentOffline)) {
      const after = (change.seenAt - killedAt) / 1000;
      t.diagnostic(`${change.serverId} OFFLINE ${after} s after the crash (declared dead after ${DEAD_AFTER} s)`);
      assert.ok(after >= DEAD_AFTER - 2, `OFFLINE ${after} s after the crash, before the API was declared dead`);
      assert.ok(after <= DEAD_AFTER + T + 2, `OFFLINE only ${after} s after the crash`);
    }
    const calm = await Promise.race([new Promise((r) => setTimeout(r, 2 * T * 1000)).then(() => "calm"), falseOffline]);
    assert.equal(calm, "calm");
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await sweeper.stop();
  }
});
