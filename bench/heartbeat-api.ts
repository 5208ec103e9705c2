/**
 * The API server alone, in its own process, for the heartbeat benchmark: the
 * real `buildApiServer` on a real PostgreSQL, with either the batching ingestor
 * (what the service runs) or one UPDATE + INSERT per heartbeat (the baseline).
 *
 * (before the metric tiers: bench/previous-heartbeat-ingest.ts).
 *
 *   node --import tsx bench/heartbeat-api.ts <database-url> batched|per-heartbeat|before
 * Prints "listening <port>" once it accepts connections.
 */
import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import { buildApiServer } from "../api/http-server.js";
import type { HeartbeatIngestor } from "../core/agents/heartbeat-ingest.js";
import { createCredentialsCipher } from "../core/security/credentials-cipher.js";
import { openDatabase } from "../db/client.js";
import { startPreviousHeartbeatIngestor } from "./previous-heartbeat-ingest.js";

const [databaseUrl, mode] = process.argv.slice(2);
if (!databaseUrl || (mode !== "batched" && mode !== "per-heartbeat" && mode !== "before")) {
  console.error("usage: heartbeat-api.ts <database-url> batched|per-heartbeat|before");
  process.exit(2);
}
const database = await openDatabase({ databaseUrl, dataDir: "memory://", poolSize: 20 });
const db = database.db;

const perHeartbeat: HeartbeatIngestor = {
  async submit(hb) {
    const metrics = JSON.stringify(hb.metrics);
    await db.transaction(async (tx) => {
      await tx.execute(
        sql`update agents set last_heartbeat_at = now(), latest_metrics = ${metrics}::jsonb where server_id = ${hb.serverId}`,
      );
      await tx.execute(sql`insert into metrics_samples (server_id, sampled_at, received_at, metrics)
        values (${hb.serverId}, coalesce(${hb.sampledAt?.toISOString() ?? null}::timestamptz, now()), now(), ${metrics}::jsonb)`);
    });
  },
  async take(intake) {
    await this.submit(await intake());
  },
  databaseNow: () => Date.now(),
  async stop() {},
};

const server = buildApiServer({
  db,
  cipher: createCredentialsCipher(randomBytes(32).toString("base64")),
  maxServersPerOwner: 1_000_000,
  listen: database.listen,
  ingestor:
    mode === "per-heartbeat"
      ? perHeartbeat
      : mode === "before"
        ? startPreviousHeartbeatIngestor(db, { instanceId: "bench-before" })
        : undefined,
});
const port = await server.listen(0, "127.0.0.1");
console.log(`listening ${port}`);
process.on("SIGTERM", async () => {
  await server.close();
  await database.close();
  process.exit(0);
});
