import { Context } from "@temporalio/activity";
import { eq, sql } from "drizzle-orm";
import type { Activities } from "../../activities/index.js";
import type { Database } from "../../db/client.js";
import { operations, outboxEvents, servers } from "../../db/schema.js";
import type { HostFacts, StepResult } from "../../workflows/definitions.js";

/**
 * Stand-ins for the SSH steps of an operation (the activities that would reach a host), for the
 * fast lane's workflow tests: each answers at once, except the ones a test holds or fails.
 */
export function hostSteps(): Partial<Activities> {
  const done = (detail: string) => async (): Promise<StepResult> => ({ changed: false, detail });
  const facts: HostFacts = {
    osId: "debian",
    osVersion: "12",
    osPrettyName: "Debian GNU/Linux 12",
    arch: "x86_64",
    kernel: "6.1.0",
    rootFreeMb: 20_000,
    memoryMb: 4_096,
  };
  return {
    connect: done("host key SHA256:stub"),
    preflight: async () => facts,
    ensureAdminUser: done("admin user present"),
    ensureDocker: done("docker present"),
    ensureFirewall: done("firewall present"),
    hardenSsh: done("sshd hardened"),
    setDeployKey: done("deploy key present"),
  } as Partial<Activities>;
}

/**
 * A step that runs until it is cancelled (heartbeating, so the cancellation reaches it), the way
 * an SSH step holds its remote command: `started` resolves when it runs, `cancelled` counts
 * the cancellations it heard.
 */
export class HeldStep {
  cancelled = 0;
  readonly started: Promise<void>;
  private markStarted = () => {};

  constructor() {
    this.started = new Promise((resolve) => {
      this.markStarted = resolve;
    });
  }

  readonly activity = async (): Promise<StepResult> => {
    this.markStarted();
    const context = Context.current();
    const beat = setInterval(() => context.heartbeat(), 100);
    try {
      await context.cancelled;
      throw new Error("unreachable: `cancelled` only rejects");
    } catch (error) {
      this.cancelled++;
      throw error;
    } finally {
      clearInterval(beat);
    }
  };
}

export async function serverRow(db: Database, id: string) {
  const [row] = await db.select().from(servers).where(eq(servers.id, id));
  if (!row) throw new Error(`no server ${id}`);
  return row;
}

export async function operationRow(db: Database, id: string) {
  const [row] = await db.select().from(operations).where(eq(operations.id, id));
  if (!row) throw new Error(`no operation ${id}`);
  return row;
}

/** The outbox events of one server, oldest first: what consumers (Kafka, alerts) were told. */
export async function serverEvents(db: Database, serverId: string) {
  return db
    .select({ type: outboxEvents.type, payload: outboxEvents.payload })
    .from(outboxEvents)
    .where(eq(outboxEvents.key, serverId))
    .orderBy(sql`${outboxEvents.createdAt}, ${outboxEvents.id}`);
}
