import type { Database } from "../../db/client.js";
import { newId } from "../../db/ids.js";
import { servers } from "../../db/schema.js";

export interface FleetRow {
  name: string;
  clusterId: string;
  labels: Record<string, string>;
}

/**
 * Server rows written straight to the database, 1,000 a statement: what a browser test or the console
 * benchmark lists needs no credential and no SSH, and CreateServer's checks (about 0.3 s a server on
 * PGlite) would make a 10,000-server fleet take most of an hour. Names come back in id (list) order.
 */
export async function insertFleetRows(db: Database, ownerId: string, rows: FleetRow[]): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < rows.length; start += 1000) {
    const batch = rows.slice(start, start + 1000).map((row, i) => {
      const id = newId();
      ids.push(id);
      const n = start + i;
      return {
        id,
        ownerId,
        clusterId: row.clusterId,
        name: row.name,
        host: `10.${100 + Math.floor(n / 65536)}.${Math.floor(n / 256) % 256}.${n % 256}`,
        authMethod: "password" as const,
        labels: row.labels,
      };
    });
    await db.insert(servers).values(batch);
  }
  return ids;
}
