import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import * as schema from "./schema.js";

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

/** PostgreSQL LISTEN: `onMessage` gets each NOTIFY payload; `onListening` runs on every (re)connect, after which missed messages must be assumed. */
export type Listen = (channel: string, onMessage: (payload: string) => void, onListening: () => void) => Promise<() => Promise<void>>;

export interface DatabaseHandle {
  db: Database;
  listen: Listen;
  kind: "postgres" | "pglite";
  /** Applies the committed drizzle-kit migrations. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}

const migrationsFolder = join(dirname(fileURLToPath(import.meta.url)), "migrations");

/**
 * The one client factory: PostgreSQL through postgres.js when a URL is given,
 * otherwise embedded PGlite in `<dataDir>/pglite` (or in memory for "memory://").
 */
export async function openDatabase(options: { databaseUrl?: string; dataDir: string; poolSize?: number }): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const sql = postgres(options.databaseUrl, { max: options.poolSize ?? 10, onnotice: () => {} });
    const db = drizzlePostgres(sql, { schema, casing: "snake_case" });
    return {
      db: db as unknown as Database,
      kind: "postgres",
      async listen(channel, onMessage, onListening) {
        const request = await sql.listen(channel, onMessage, onListening);
        return () => request.unlisten();
      },
      migrate: () => migratePostgres(db, { migrationsFolder }),
      close: () => sql.end({ timeout: 5 }),
    };
  }
  let dataPath: string | undefined;
  if (options.dataDir !== "memory://") {
    dataPath = join(options.dataDir, "pglite");
    mkdirSync(dataPath, { recursive: true });
  }
  const client = await PGlite.create(dataPath);
  const db = drizzlePglite(client, { schema, casing: "snake_case" });
  return {
    db: db as unknown as Database,
    kind: "pglite",
    async listen(channel, onMessage, onListening) {
      const unlisten = await client.listen(channel, onMessage);
      onListening();
      return () => unlisten();
    },
    migrate: () => migratePglite(db, { migrationsFolder }),
    close: () => client.close(),
  };
}
