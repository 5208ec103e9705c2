import { ConfigError, loadConfig } from "../core/config.js";
import { createOwnerToken } from "../core/owners.js";
import { resourceName } from "../core/validation.js";
import { openDatabase } from "../db/client.js";

/** Operator command: creates an owner (or adds a token to an existing one) and prints the new bearer token once. */
const name = process.argv[2] ?? "";
if (!resourceName.safeParse(name).success) {
  console.error("usage: npm run owner:create -- <owner-name>   (lower-case letters, digits, '.', '-')");
  process.exit(2);
}
try {
  const config = loadConfig();
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.AXION_DATA_DIR });
  await database.migrate();
  const { owner, token } = await createOwnerToken(database.db, name);
  await database.close();
  console.log(JSON.stringify({ owner: owner.name, ownerId: owner.id, token }));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(2);
}
