import { Context } from "@temporalio/activity";
import { createCluster } from "../../core/inventory/clusters.js";
import { createOwnerToken, type Owner } from "../../core/inventory/owners.js";
import { createServer } from "../../core/inventory/servers.js";
import { createCredentialsCipher } from "../../core/security/credentials-cipher.js";
import type { Database } from "../../db/client.js";
import type { ConnectionTestResult } from "../../workflows/definitions.js";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** An owner with one cluster of `count` servers (documentation addresses: nothing is ever connected to). */
export async function seedFleet(db: Database, count: number, name = `o${Math.random().toString(36).slice(2, 8)}`) {
  const { owner } = await createOwnerToken(db, name);
  const cluster = await createCluster(db, owner, { name: "fleet", description: "", labels: {} });
  const deps = { db, cipher: createCredentialsCipher(Buffer.alloc(32, 7).toString("base64")), maxServersPerOwner: 10_000 };
  const servers: { id: string; name: string }[] = [];
  for (let i = 0; i < count; i++) {
    const server = await createServer(deps, owner, {
      clusterId: cluster.id,
      name: `s-${String(i).padStart(4, "0")}`,
      host: `203.0.113.${(i % 250) + 1}`,
      sshPort: 1000 + i,
      sshUser: "root",
      credential: { kind: "password", password: "not-used-by-stubbed-probes" },
      labels: {},
    });
    servers.push({ id: server.id, name: server.name });
  }
  return { owner: owner as Owner, cluster, servers };
}

export type ProbeAnswer = "ok" | "auth_failed" | "hang";

/**
 * A stand-in for the connection probe (the one activity of a test-connection child that reaches a
 * host): answers per server, counts probes in flight, and holds "hang" servers until `release()` or
 * until the activity is cancelled (it heartbeats, so a cancellation reaches it).
 */
export class ProbeStub {
  readonly probed: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  cancelled = 0;
  private gate = deferred();
  private waiters: { holds: () => boolean; resolve: () => void }[] = [];

  constructor(private readonly answerFor: (serverId: string) => ProbeAnswer) {}

  /** Resolves once `count` probes are in flight at the same moment. */
  whenInFlight(count: number): Promise<void> {
    return this.when(() => this.inFlight >= count);
  }

  /** Resolves once `count` probes have started. */
  whenProbed(count: number): Promise<void> {
    return this.when(() => this.probed.length >= count);
  }

  private when(holds: () => boolean): Promise<void> {
    if (holds()) return Promise.resolve();
    const waiter = deferred();
    this.waiters.push({ holds, resolve: waiter.resolve });
    return waiter.promise;
  }

  private wake(): void {
    for (const w of this.waiters.filter((w) => w.holds())) w.resolve();
    this.waiters = this.waiters.filter((w) => !w.holds());
  }

  release(): void {
    this.gate.resolve();
  }

  readonly activity = async ({ serverId }: { serverId: string }): Promise<ConnectionTestResult> => {
    this.probed.push(serverId);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.wake();
    try {
      const answer = this.answerFor(serverId);
      if (answer === "hang") {
        const context = Context.current();
        const beat = setInterval(() => context.heartbeat(), 200);
        try {
          await Promise.race([this.gate.promise, context.cancelled]);
        } catch (error) {
          this.cancelled++;
          throw error;
        } finally {
          clearInterval(beat);
        }
        return { outcome: "ok", message: "connected" } as ConnectionTestResult;
      }
      return (
        answer === "ok" ? { outcome: "ok", message: "connected" } : { outcome: "auth_failed", message: "authentication failed" }
      ) as ConnectionTestResult;
    } finally {
      this.inFlight--;
    }
  };
}
