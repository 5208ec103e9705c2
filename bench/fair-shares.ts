/**
 * Fair shares (issue 16, item 5), on demand: `node --import tsx bench/fair-shares.ts` (root: it
 * boots two test hosts). Organization B's experience, first unloaded, then while organization A
 * floods everything the organizations share:
 *   - key parsing: A's CreateServer with 64-round encrypted keys, 40 at a time, all along;
 *   - 60 test-connection rollouts and 200 PlanServer calls against hosts that never answer
 *     (test/support/silent-host.ts), started at once;
 *   - 20 notification channels at a receiver that never answers (A's servers going UNREACHABLE
 *     after the connection tests give them alerts to deliver).
 * Targets, each printed met / not met: B's CreateServer answers within 1 s; B's ConfigureServer on
 * a real test host starts its first step within 5 s and finishes within twice its unloaded time;
 * B's OFFLINE alert is delivered within 10 s.
 *
 *   node --import tsx bench/fair-shares.ts [--silent-servers 20] [--rollouts 60] [--plans 200] [--channels 20]
 *
 * Everything goes through the API as a client would, except two things a client cannot do: B's
 * OFFLINE is written by the liveness actor (core/inventory/server-status.ts; no agent runs here), and the
 * alerting loop runs in this process with a grace period of 0 (ALERT_GRACE_SECONDS), so the figure
 * is the delivery's own delay. Refusals of A's flood (ResourceExhausted and the like) are counted
 * and printed: they are the API's shares at work.
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { inArray } from "drizzle-orm";
import { type Alerting, startAlerting } from "../core/alerts/alerting.js";
import { setServerStatus } from "../core/inventory/server-status.js";
import { setLogLevel } from "../core/kernel/log.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { servers } from "../db/schema.js";
import { NotificationChannelKind } from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import { OperationStatus } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { RolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { testCredentialsKey } from "../test/support/api.js";
import { startHangingReceiver } from "../test/support/hanging-receiver.js";
import { ed25519KeyPair } from "../test/support/keys.js";
import { type SilentHost, startSilentHost } from "../test/support/silent-host.js";
import { downHosts } from "../test/support/testhosts.js";
import { startWebhookReceiver } from "../test/support/webhook-receiver.js";
import { type AxionStack, allowPolicy, dockerImagePath, freshFleet, mapLimit, say, startAxion } from "./stack.js";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const silentServers = option("--silent-servers", 20);
const rolloutCount = option("--rollouts", 60);
const planCount = option("--plans", 200);
const channelCount = option("--channels", 20);
const prefix = "bench-fair";
setLogLevel("error");

type Owner = ReturnType<AxionStack["api"]["clients"]>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts each outcome of the flood's calls: ok, or the Connect code that refused it. */
const outcomes = new Map<string, number>();
async function counted<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
  try {
    const result = await call();
    outcomes.set(`${what} ok`, (outcomes.get(`${what} ok`) ?? 0) + 1);
    return result;
  } catch (error) {
    const code = error instanceof ConnectError ? Code[error.code] : String(error).slice(0, 60);
    outcomes.set(`${what} ${code}`, (outcomes.get(`${what} ${code}`) ?? 0) + 1);
    return undefined;
  }
}

/** Setup calls may meet the API's rate limits: wait and try again. */
async function patiently<T>(call: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof ConnectError && error.code === Code.ResourceExhausted)) throw error;
      await sleep(1000);
    }
  }
}

async function newOwner(stack: AxionStack, name: string): Promise<{ owner: Owner; ownerId: string; clusterId: string }> {
  const { token, ownerId } = await stack.api.newOwner(name);
  const owner = stack.api.clients(token);
  const clusterId = (await owner.clusters.createCluster({ name })).cluster!.id;
  return { owner, ownerId, clusterId };
}

interface ConfigureFigures {
  firstStepMs: number;
  totalMs: number;
  status: string;
}

/** ConfigureServer through the API, followed with WatchOperation; `seen` is filled in as it goes (read it after a timeout). */
async function configure(owner: Owner, serverId: string, seen: ConfigureFigures): Promise<ConfigureFigures> {
  const started = Date.now();
  const { operation } = await owner.servers.configureServer({ id: serverId });
  for await (const update of owner.operations.watchOperation({ id: operation!.id })) {
    const op = update.operation;
    const first = op?.steps[0];
    // The step's own start time (this machine's clock): the watch streams about once a second.
    if (first && seen.firstStepMs === Number.POSITIVE_INFINITY)
      seen.firstStepMs = (first.startTime ? timestampMs(first.startTime) : Date.now()) - started;
    seen.status = OperationStatus[op?.status ?? 0] ?? "";
  }
  seen.totalMs = Date.now() - started;
  return seen;
}

const notYet = (): ConfigureFigures => ({
  firstStepMs: Number.POSITIVE_INFINITY,
  totalMs: Number.POSITIVE_INFINITY,
  status: "not started",
});

async function main() {
  downHosts(prefix);
  const { fleet } = await freshFleet(prefix, 2, dockerImagePath());
  const silent: SilentHost[] = [];
  // One per server of A: an owner has one server per address and port.
  for (let i = 0; i < silentServers; i++) silent.push(await startSilentHost());
  const hangingReceiver = await startHangingReceiver();
  const receiver = await startWebhookReceiver();
  // Silent hosts on 127.0.0.2, test hosts on their bridge; the receivers on 127.0.0.1 (alerting's policy).
  const stack = await startAxion({ serverAddressAllow: ["127.0.0.1/32", "127.0.0.2/32", "0.0.0.0/0", "::/0"] });
  let alerting: Alerting | undefined;
  const stopFlood = new AbortController();
  try {
    alerting = startAlerting({
      db: stack.api.database.db,
      cipher: createCredentialsCipher(testCredentialsKey),
      networkPolicy: allowPolicy(["127.0.0.1/32"])!,
      graceSeconds: 0,
      defaults: { diskPercent: 90, memoryPercent: 95, sustainedSeconds: 300 },
      resourceIntervalSeconds: 3600,
      timeoutMs: 10_000,
      retryInitialMs: 5_000,
      retryMaxMs: 15 * 60_000,
      maxAttempts: 20,
    });

    // --- B: two real hosts (one configured unloaded, one under the flood), and a server for its OFFLINE alert.
    const b = await newOwner(stack, "org-b");
    const [unloadedId, loadedId] = await mapLimit(fleet.hosts, 2, async (host, i) => {
      const { server } = await patiently(() =>
        b.owner.servers.createServer({
          clusterId: b.clusterId,
          name: `b-${i + 1}`,
          host: host.ip,
          sshPort: host.port,
          sshUser: host.user,
          credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
        }),
      );
      return server!.id;
    });
    const { server: watched } = await patiently(() =>
      b.owner.servers.createServer({
        clusterId: b.clusterId,
        name: "b-agent",
        host: "203.0.113.10",
        credential: { method: { case: "password", value: "not-used-here" } },
      }),
    );
    await stack.api.database.db
      .update(servers)
      .set({ status: "ONLINE" })
      .where(inArray(servers.id, [watched!.id]));
    await patiently(() =>
      b.owner.notifications.createNotificationChannel({
        name: "ops",
        kind: NotificationChannelKind.WEBHOOK,
        url: `${receiver.url}/org-b`,
        secret: "whsec-org-b-0123456789",
      }),
    );

    say("B's ConfigureServer, unloaded");
    const unloaded = await configure(b.owner, unloadedId!, notYet());
    say(`unloaded: first step after ${unloaded.firstStepMs} ms, done after ${unloaded.totalMs} ms (${unloaded.status})`);

    // --- A: servers at silent hosts, channels at a receiver that never answers, keys that cost 64 bcrypt rounds.
    const a = await newOwner(stack, "org-a");
    const aServers = await mapLimit(
      Array.from({ length: silentServers }, (_, i) => i),
      4,
      async (i) => {
        const host = silent[i]!;
        const { server } = await patiently(() =>
          a.owner.servers.createServer({
            clusterId: a.clusterId,
            name: `a-${i + 1}`,
            host: host.host,
            sshPort: host.port,
            credential: { method: { case: "password", value: "never-asked-for" } },
          }),
        );
        return server!.id;
      },
    );
    for (let i = 0; i < channelCount; i++) {
      await patiently(() =>
        a.owner.notifications.createNotificationChannel({
          name: `hang-${i}`,
          kind: NotificationChannelKind.WEBHOOK,
          url: `${hangingReceiver.url}/hook/${i}`,
          secret: "whsec-org-a-0123456789",
        }),
      );
    }
    say("making 4 encrypted keys of 64 bcrypt rounds");
    const heavyKeys = Array.from({ length: 4 }, () => ed25519KeyPair("correct horse battery", 64).privateKey);

    say(`flood: ${rolloutCount} test-connection rollouts, ${planCount} plans, key parsing 40 at a time, ${channelCount} hanging channels`);
    const keyFlood = Promise.all(
      Array.from({ length: 40 }, async (_, lane) => {
        for (let n = 0; !stopFlood.signal.aborted; n++) {
          await counted("A CreateServer (64-round key)", () =>
            a.owner.servers.createServer({
              clusterId: a.clusterId,
              name: `heavy-${lane}-${n}`,
              host: "203.0.113.20",
              sshPort: 1024 + ((lane * 1000 + n) % 60_000),
              credential: { method: { case: "privateKey", value: { key: heavyKeys[lane % 4]!, passphrase: "correct horse battery" } } },
            }),
          );
        }
      }),
    );
    const rollouts = Promise.all(
      Array.from({ length: rolloutCount }, () =>
        counted("A StartRollout test_connection", () =>
          a.owner.rollouts.startRollout({
            kind: RolloutKind.TEST_CONNECTION,
            target: { serverIds: aServers },
            strategy: {
              canarySize: 0,
              batchSize: { value: { case: "percent", value: 100 } },
              maxFailures: { value: { case: "percent", value: 100 } },
            },
          }),
        ),
      ),
    );
    const plans = Promise.all(
      Array.from({ length: planCount }, (_, i) =>
        counted("A PlanServer", () => a.owner.servers.planServer({ id: aServers[i % aServers.length]!, kind: RolloutKind.CONFIGURE })),
      ),
    );
    // The flood is in place once the hanging hosts hold connections.
    await Promise.race([Promise.all(silent.map((h) => h.acceptedCount(1))), sleep(15_000)]);
    await sleep(2_000);

    say("B under the flood");
    // B's three kinds of work at once, each bounded: a call that never answers is a figure, not a hang.
    const creates = (async () => {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        const ok = await b.owner.servers
          .createServer(
            {
              clusterId: b.clusterId,
              name: `b-extra-${i}`,
              host: "203.0.113.30",
              sshPort: 2200 + i,
              credential: { method: { case: "privateKey", value: { key: fleet.privateKey } } },
            },
            { timeoutMs: 60_000 },
          )
          .then(
            () => true,
            (error) => {
              say(`B CreateServer: ${String(error).slice(0, 120)}`);
              return false;
            },
          );
        times.push(ok ? Date.now() - started : Number.POSITIVE_INFINITY);
      }
      say(`B CreateServer: ${times.join(", ")} ms`);
      return times;
    })();
    const from = receiver.received.length;
    const offlineAt = Date.now();
    await setServerStatus(stack.api.database.db, watched!.id, "OFFLINE", "no heartbeat", { by: "liveness" });
    const alertMs = receiver
      .waitFor(from + 1, 120_000)
      .then((all) => all[from]!.at - offlineAt)
      .catch(() => Number.POSITIVE_INFINITY);
    const cap = Math.max(60_000, 10 * unloaded.totalMs);
    const loaded = notYet();
    await Promise.race([configure(b.owner, loadedId!, loaded), sleep(cap)]);
    if (loaded.totalMs === Number.POSITIVE_INFINITY) loaded.status += ` (still running after ${cap} ms)`;
    say(`loaded: first step after ${loaded.firstStepMs} ms, done after ${loaded.totalMs} ms (${loaded.status})`);
    const createMs = await creates;
    const alertDelay = await alertMs;

    const met = (ok: boolean) => (ok ? "met" : "NOT MET");
    const worstCreate = Math.max(...createMs);
    console.log(`\nFair shares: organization B while organization A floods (${new Date().toISOString()})`);
    console.log(`flood: ${[...outcomes].map(([k, v]) => `${k}: ${v}`).join("; ")}`);
    console.log(
      `hanging hosts: ${silent.reduce((n, h) => n + h.accepted(), 0)} connections, at most ${Math.max(...silent.map((h) => h.mostOpenAtOnce()))} open at once on one; hanging receiver: at most ${hangingReceiver.mostOpenAtOnce()} requests open at once`,
    );
    console.log(`B CreateServer: ${createMs.join(", ")} ms (worst ${worstCreate} ms; target < 1000 ms): ${met(worstCreate < 1000)}`);
    console.log(
      `B ConfigureServer first step: ${loaded.firstStepMs} ms (unloaded ${unloaded.firstStepMs} ms; target < 5000 ms): ${met(loaded.firstStepMs < 5000)}`,
    );
    console.log(
      `B ConfigureServer done: ${loaded.totalMs} ms, ${loaded.status} (unloaded ${unloaded.totalMs} ms; ratio ${(loaded.totalMs / unloaded.totalMs).toFixed(2)}; target <= 2.00): ${met(loaded.totalMs <= 2 * unloaded.totalMs)}`,
    );
    console.log(`B OFFLINE alert delivered: ${alertDelay} ms (target < 10000 ms): ${met(alertDelay < 10_000)}`);

    stopFlood.abort();
    await Promise.race([Promise.all([keyFlood, rollouts, plans]), sleep(30_000)]);
  } finally {
    // Calls of the flood still under way meet closed connections: noted, so the hosts still go down.
    process.on("uncaughtException", (error) => say(`while shutting down: ${String(error).slice(0, 120)}`));
    stopFlood.abort();
    await hangingReceiver.close();
    await alerting?.stop();
    await stack.close();
    await receiver.close();
    await Promise.all(silent.map((h) => h.close()));
    downHosts(prefix);
  }
}

await main();
process.exit(0);
