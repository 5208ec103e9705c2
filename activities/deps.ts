import type { CredentialsCipher } from "../core/credentials-cipher.js";
import type { Database } from "../db/client.js";

/** What activities need from the process: they load secrets by id themselves, never from workflow input. */
export interface ActivityDeps {
  db: Database;
  cipher: CredentialsCipher;
  /** The orchestrator's public key for deploy-key steps (public: may appear in payloads). */
  orchestratorPublicKey?: string;
  /** The unprivileged admin user the bootstrap creates. */
  adminUser: string;
  sshConnectTimeoutMs: number;
}
