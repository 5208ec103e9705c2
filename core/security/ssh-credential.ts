import type { SshCredentialInput } from "../kernel/validation.js";
import { type KeyParsingPool, sharedKeyParsing } from "./key-parsing.js";

/**
 * ssh2 parses (and decrypts: a bcrypt KDF) a private key synchronously when it
 * connects, on whatever event loop calls it. Every login first decrypts a stored
 * key in a key-parsing thread, so ssh2 is handed one that needs no KDF.
 */
export async function credentialForLogin(
  credential: SshCredentialInput,
  share: { ownerId: string; pool?: KeyParsingPool; overShare?: "refuse" | "queue" },
): Promise<{ ok: true; credential: SshCredentialInput } | { ok: false; problem: string }> {
  if (credential.kind !== "private_key") return { ok: true, credential };
  const prepared = await (share.pool ?? sharedKeyParsing()).prepare({
    ownerId: share.ownerId,
    key: credential.privateKey,
    passphrase: credential.passphrase || undefined,
    overShare: share.overShare,
  });
  if (!prepared.ok) return { ok: false, problem: `the stored private key ${prepared.problem}` };
  return { ok: true, credential: { kind: "private_key", privateKey: prepared.privateKey, passphrase: prepared.passphrase } };
}
