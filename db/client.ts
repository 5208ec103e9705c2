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
/** The handle a `db.transaction` callback receives. */
export type Transaction = Parameters<Parameters<Database["transaction"]>[0]>[0];

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

/** Key of the session advisory lock held while migrating (any constant shared by every process of this service). */
const MIGRATION_LOCK_KEY = 0x0a7e0001;

/**
 * Processes started together (five workers and APIs at once) would each run
 * drizzle's migrator, which is not safe concurrently ("relation already exists").
 * One dedicated connection takes a session advisory lock, migrates and unlocks:
 * the first process migrates, the others wait, then find nothing left to apply.
 * PGlite needs no lock: it is single-process, one handle per data folder.
 */
async function migratePostgresLocked(databaseUrl: string): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    try {
      await migratePostgres(drizzlePostgres(sql), { migrationsFolder });
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

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
      migrate: () => migratePostgresLocked(options.databaseUrl as string),
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
