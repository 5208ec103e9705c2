import type { Backend } from "./api.js";

const all: Backend[] = ["pglite", "postgres"];

/**
 * The database backends the backend-looping tests run on: both, unless `AXION_TEST_BACKENDS`
 * names fewer (the fast lane sets `pglite`, so it needs no PostgreSQL server).
 */
export function testBackends(): Backend[] {
  const named = process.env.AXION_TEST_BACKENDS;
  if (!named) return all;
  const chosen = named.split(",").map((b) => b.trim());
  const unknown = chosen.filter((b) => !all.includes(b as Backend));
  if (unknown.length > 0) throw new Error(`AXION_TEST_BACKENDS: unknown backend ${unknown.join(", ")} (known: ${all.join(", ")})`);
  return all.filter((b) => chosen.includes(b));
}

/** For a describe that needs PostgreSQL whatever the loop: its skip reason when PostgreSQL is left out. */
export function postgresLeftOut(): string | false {
  return testBackends().includes("postgres") ? false : "PostgreSQL left out (AXION_TEST_BACKENDS)";
}
