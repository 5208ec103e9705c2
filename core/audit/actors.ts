import { sql } from "drizzle-orm";
import type { Database } from "../../db/client.js";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const rowsOf = <T>(result: unknown): T[] => (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];

/** The organization of the server an agent call names, whose chain records it; none for an unknown server. */
export async function ownerOfServer(db: Database, serverId: string): Promise<string | undefined> {
  if (!uuid.test(serverId)) return undefined;
  const [row] = rowsOf<{ owner_id: string }>(await db.execute(sql`select owner_id from servers where id = ${serverId}`));
  return row?.owner_id;
}
