import { ConfigError, loadConfig } from "../core/kernel/config.js";
import { openDatabase } from "./client.js";

/** Applies committed migrations to DATABASE_URL (or the embedded PGlite). The service also does this at start. */
try {
  const config = loadConfig();
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.AXION_DATA_DIR });
  await database.migrate();
  await database.close();
  console.log(`migrations applied (${database.kind})`);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(2);
}
