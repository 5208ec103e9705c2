import type { CredentialsCipher } from "../core/credentials-cipher.js";
import type { Database } from "../db/client.js";

/** What activities need from the process: they load secrets by id themselves, never from workflow input. */
export interface ActivityDeps {
  db: Database;
  cipher: CredentialsCipher;
}

/** Activities registered with the worker, built once per process (typed like temporalio's samples). */
export function createActivities(_deps: ActivityDeps) {
  return {};
}

export type Activities = ReturnType<typeof createActivities>;
