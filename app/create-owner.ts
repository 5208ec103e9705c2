import { parseArgs } from "node:util";
import { createOwnerToken, ENV_TOKEN_LABEL, tokenPrefix } from "../core/inventory/owners.js";
import { ConfigError, loadConfig } from "../core/kernel/config.js";
import { LIFETIME_FORMAT, lifetimeMs } from "../core/kernel/lifetime.js";
import { resourceName } from "../core/kernel/validation.js";
import { openDatabase } from "../db/client.js";

/** Operator command: creates an owner (or adds a token to an existing one) and prints the new bearer token once. */
const usage =
  "usage: npm run owner:create -- <owner-name> [--label <text>] [--expires-in 30m|12h|7d]   (owner: lower-case letters, digits, '.', '-')";

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

const parse = () =>
  parseArgs({ allowPositionals: true, options: { label: { type: "string", default: "" }, "expires-in": { type: "string" } } });
let args: ReturnType<typeof parse>;
try {
  args = parse();
} catch (error) {
  fail(`${(error as Error).message}\n${usage}`);
}
const name = args.positionals[0] ?? "";
if (args.positionals.length !== 1 || !resourceName.safeParse(name).success) fail(usage);
const label = args.values.label ?? "";
if (label.length > 64 || /\p{C}/u.test(label) || label === ENV_TOKEN_LABEL)
  fail(`--label: at most 64 printable characters, not ${ENV_TOKEN_LABEL}`);
let expiresAt: Date | undefined;
if (args.values["expires-in"] !== undefined) {
  const ms = lifetimeMs(args.values["expires-in"]);
  if (ms === undefined) fail(`--expires-in: ${LIFETIME_FORMAT}`);
  expiresAt = new Date(Date.now() + ms);
}

try {
  const config = loadConfig();
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.AXION_DATA_DIR });
  await database.migrate();
  const { owner, token, tokenId } = await createOwnerToken(database.db, name, undefined, label, expiresAt);
  await database.close();
  console.log(
    JSON.stringify({
      owner: owner.name,
      ownerId: owner.id,
      token,
      tokenId,
      prefix: tokenPrefix(token),
      expiresAt: expiresAt?.toISOString() ?? null,
    }),
  );
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  fail(error.message);
}
