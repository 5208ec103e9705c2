import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sql as rawSql } from "drizzle-orm";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { ENV_TOKEN_LABEL, hashToken, ownerForToken } from "../core/inventory/owners.js";
import { type DatabaseHandle, openDatabase } from "../db/client.js";
import { testBackends } from "./support/backends.js";
import { startPostgres, type TestPostgres } from "./support/postgres.js";

const migrationsFolder = new URL("../db/migrations/", import.meta.url).pathname;
const journal = JSON.parse(readFileSync(join(migrationsFolder, "meta/_journal.json"), "utf8")) as {
  entries: { tag: string }[];
};

/** A migrations folder holding the committed migrations before `tag`: the database of an earlier release. */
function migrationsBefore(tag: string): { folder: string; remove: () => void } {
  const folder = mkdtempSync(join(tmpdir(), "axion-migrations-"));
  const at = journal.entries.findIndex((e) => e.tag === tag);
  assert.ok(at > 0, `migration ${tag} is committed`);
  const entries = journal.entries.slice(0, at);
  mkdirSync(join(folder, "meta"));
  writeFileSync(join(folder, "meta/_journal.json"), JSON.stringify({ ...journal, entries }));
  for (const e of entries) copyFileSync(join(migrationsFolder, `${e.tag}.sql`), join(folder, `${e.tag}.sql`));
  return { folder, remove: () => rmSync(folder, { recursive: true, force: true }) };
}

/** Applies the migrations in `folder` with the backend's own drizzle migrator. */
async function migrateFrom(database: DatabaseHandle, folder: string): Promise<void> {
  if (database.kind === "pglite") await migratePglite(database.db as never, { migrationsFolder: folder });
  else await migratePostgres(database.db as never, { migrationsFolder: folder });
}

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

for (const backend of testBackends()) {
  describe(`the roles migration on a populated ${backend} database`, () => {
    let pg: TestPostgres | undefined;
    let database: DatabaseHandle;
    let earlier: ReturnType<typeof migrationsBefore>;
    before(async () => {
      earlier = migrationsBefore("0008_roles");
      if (backend === "postgres") {
        pg = await startPostgres();
        const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
        await admin`create database roles_migration`;
        await admin.end();
      }
      database = await openDatabase({
        databaseUrl: pg?.url.replace(/\/[^/?]*(\?|$)/, "/roles_migration$1"),
        dataDir: "memory://",
      });
    });
    after(async () => {
      await database?.close();
      await pg?.stop();
      earlier?.remove();
    });

    test("tokens made before roles, the AXION_ADMIN_TOKEN one included, become admin with no cluster limit; nothing is lost", async () => {
      await migrateFrom(database, earlier.folder);
      const db = database.db;
      const ownerId = "0190a0b0-0000-7000-8000-000000000001";
      const clusterId = "0190a0b0-0000-7000-8000-000000000002";
      await db.execute(rawSql`insert into owners (id, name) values (${ownerId}, 'admin')`);
      await db.execute(rawSql`insert into clusters (id, owner_id, name) values (${clusterId}, ${ownerId}, 'web')`);
      const tokens = [
        { id: "0190a0b0-0000-7000-8000-000000000003", token: "axn_before-roles-ci", label: "ci", expires: "2099-01-01T00:00:00Z" },
        { id: "0190a0b0-0000-7000-8000-000000000004", token: "from-the-environment-0123456789", label: ENV_TOKEN_LABEL, expires: null },
      ];
      for (const t of tokens) {
        await db.execute(
          rawSql`insert into api_tokens (id, owner_id, token_hash, label, token_prefix, expires_at) values (${t.id}, ${ownerId}, ${hashToken(t.token)}, ${t.label}, 'axn_', ${t.expires})`,
        );
      }

      await migrateFrom(database, migrationsFolder);

      const rows = (await db.execute(
        rawSql`select id, label, role, cluster_ids, created_by_token_id, expires_at from api_tokens order by id`,
      )) as unknown as { rows?: Record<string, unknown>[] } & Record<string, unknown>[];
      const list = (rows.rows ?? rows) as Record<string, unknown>[];
      assert.deepEqual(
        list.map((r) => [r.id, r.label, r.role, r.cluster_ids, r.created_by_token_id, r.expires_at !== null]),
        [
          [tokens[0]!.id, "ci", "admin", null, null, true],
          [tokens[1]!.id, ENV_TOKEN_LABEL, "admin", null, null, false],
        ],
      );
      for (const t of tokens) {
        const owner = await ownerForToken(db, t.token);
        assert.deepEqual(owner && { id: owner.id, role: owner.role, clusterIds: owner.clusterIds }, {
          id: ownerId,
          role: "admin",
          clusterIds: undefined,
        });
      }
      await assert.rejects(
        db.execute(
          rawSql`insert into api_tokens (id, owner_id, token_hash) values (${"0190a0b0-0000-7000-8000-000000000005"}, ${ownerId}, 'x')`,
        ),
        "a new token must name its role: the default only filled the rows already there",
      );
    });
  });
}
