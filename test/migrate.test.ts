import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import postgres from "postgres";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

const journal = JSON.parse(readFileSync(new URL("../db/migrations/meta/_journal.json", import.meta.url), "utf8")) as {
  entries: unknown[];
};

/** `npm run migrate` as its own OS process; resolves with its exit code and output. */
function migrateProcess(databaseUrl: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "db/migrate.ts"], {
      env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: "error" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("exit", (code) => resolve({ code, output }));
  });
}

describe("migrations on one PostgreSQL", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  test("five processes started at once all come up, and each migration is applied once", async () => {
    const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      await sql`create database concurrent_start`;
      const url = pg.url.replace(/\/[^/?]*(\?|$)/, "/concurrent_start$1");
      const results = await Promise.all(Array.from({ length: 5 }, () => migrateProcess(url)));
      for (const r of results) assert.equal(r.code, 0, r.output);
      const target = postgres(url, { max: 1, onnotice: () => {} });
      try {
        const applied = await target`select count(*)::int as n from drizzle.__drizzle_migrations`;
        assert.equal(applied[0]?.n, journal.entries.length);
        const tables = await target`select count(*)::int as n from information_schema.tables where table_name = 'servers'`;
        assert.equal(tables[0]?.n, 1);
      } finally {
        await target.end();
      }
    } finally {
      await sql.end();
    }
  });
});
