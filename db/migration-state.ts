import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import type { Database } from "./client.js";

const journal = join(dirname(fileURLToPath(import.meta.url)), "migrations", "meta", "_journal.json");

/** When the code's newest migration was made (drizzle records it as `created_at` once applied). */
const codeVersion: number = Math.max(
  ...(JSON.parse(readFileSync(journal, "utf8")) as { entries: { when: number }[] }).entries.map((e) => e.when),
);

/**
 * Whether the database holds every migration this code ships (a newer one, applied by a newer
 * process during a rolling upgrade, counts as current). Throws when the database does not answer.
 */
export async function migrationsCurrent(db: Database): Promise<boolean> {
  let result: unknown;
  try {
    result = await db.execute(sql`select max(created_at) as applied from drizzle.__drizzle_migrations`);
  } catch (error) {
    if (isUndefinedTable(error)) return false; // never migrated
    throw error;
  }
  const rows = (Array.isArray(result) ? result : (result as { rows: unknown[] }).rows) as { applied: string | number | null }[];
  const applied = rows[0]?.applied;
  return applied !== null && applied !== undefined && Number(applied) >= codeVersion;
}

function isUndefinedTable(error: unknown): boolean {
  const code = (e: unknown) => (e && typeof e === "object" && "code" in e ? (e as { code: unknown }).code : undefined);
  return code(error) === "42P01" || code((error as { cause?: unknown })?.cause) === "42P01";
}
