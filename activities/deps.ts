import type { CredentialsCipher } from "../core/security/credentials-cipher.js";
import type { KeyParsingPool } from "../core/security/key-parsing.js";
import type { NetworkPolicy } from "../core/security/network-policy.js";
import type { Database } from "../db/client.js";
import type { ProviderEndpoints } from "./providers/registry.js";
import type { SshShares } from "./ssh/owner-shares.js";
import type { SshSessionPool } from "./ssh/pool.js";

/** What activities need from the process: they load secrets by id themselves, never from workflow input. */
export interface ActivityDeps {
  db: Database;
  cipher: CredentialsCipher;
  /** The orchestrator's public key for deploy-key steps (public: may appear in payloads). */
  orchestratorPublicKey?: string;
  /** The unprivileged admin user the bootstrap creates. */
  adminUser: string;
  sshConnectTimeoutMs: number;
  /** The agent to install: where its binaries are and the API URL agents call. Absent: the agent step is skipped. */
  agent?: { binaryDir: string; apiUrl: string; heartbeatIntervalSeconds: number };
  /** Where the VPS providers' APIs are. Credentials come from the server's provider account, by id. */
  providers?: ProviderEndpoints;
  /** Idle SSH sessions shared by consecutive steps of a workflow run; absent, every step logs in anew. */
  sshSessions?: SshSessionPool;
  /** Each owner's share of the SSH sessions this worker runs at once; absent, no share is enforced. */
  sshShares?: SshShares;
  /** Where stored private keys are decrypted before ssh2 sees them; default: the process' shared pool. */
  keyParsing?: KeyParsingPool;
  /** Which server addresses may be connected to (checked after name resolution); default: the built-in policy. */
  networkPolicy?: NetworkPolicy;
  /** Whether a Kafka relay publishes the outbox (KAFKA_BROKERS set); default true: unpublished events are kept for it. */
  outboxRelayed?: boolean;
}
