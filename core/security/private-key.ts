import { createDecipheriv, createPublicKey } from "node:crypto";
import { createRequire } from "node:module";
import ssh2 from "ssh2";
import {
  isOpenSshKeyFile,
  KEY_CIPHERS,
  KeyFileProblem,
  type OpenSshKeyFile,
  readOpenSshKeyFile,
  unencryptedKeyFile,
} from "./openssh-key.js";

/**
 * Turns a stored private key into what the SSH layer can use at once. Expensive
 * (a bcrypt KDF) and synchronous: it runs in a key-parsing thread
 * (core/security/key-parsing.ts), never on an event loop that serves anything else.
 */

/** RSA/DSA moduli above this make every signature cost the worker's event loop tens of milliseconds or more. */
export const MAX_KEY_BITS = 8192;

export type PreparedKey =
  /** `privateKey` needs no KDF any more: an encrypted openssh-key-v1 file comes back decrypted. */
  | { ok: true; privateKey: string; passphrase?: string; publicKey: string }
  /** Completes "credential.private_key.key: ...". */
  | { ok: false; problem: string };

// The bcrypt_pbkdf ssh2 itself decrypts key files with (its own dependency, resolved from ssh2's folder).
const fromSsh2 = createRequire(createRequire(import.meta.url).resolve("ssh2"));
const bcrypt = fromSsh2("bcrypt-pbkdf") as {
  pbkdf(pass: Buffer, passLen: number, salt: Buffer, saltLen: number, key: Buffer, keyLen: number, rounds: number): number;
};

const WRONG_PASSPHRASE = "is encrypted: a passphrase is required or the given one is wrong";

function decryptPrivateSection(file: OpenSshKeyFile, passphrase: string): Buffer {
  const cipher = KEY_CIPHERS[file.cipherName];
  if (!cipher) throw new KeyFileProblem("is not a valid private key");
  const pass = Buffer.from(passphrase, "utf8");
  const derived = Buffer.alloc(cipher.keyLen + cipher.ivLen);
  if (bcrypt.pbkdf(pass, pass.length, file.salt, file.salt.length, derived, derived.length, file.rounds) !== 0) {
    throw new KeyFileProblem("is not a valid private key");
  }
  const decipher = createDecipheriv(cipher.sslName, derived.subarray(0, cipher.keyLen), derived.subarray(cipher.keyLen), {
    authTagLength: cipher.authLen || undefined,
  } as never);
  decipher.setAutoPadding(false);
  if (cipher.authLen) (decipher as unknown as { setAuthTag(tag: Buffer): void }).setAuthTag(file.authTag);
  let section: Buffer;
  try {
    section = Buffer.concat([decipher.update(file.privateSection), decipher.final()]);
  } catch {
    throw new KeyFileProblem(WRONG_PASSPHRASE);
  }
  // Two equal random check words open the section: a wrong passphrase yields noise.
  if (section.length < 8 || section.readUInt32BE(0) !== section.readUInt32BE(4)) throw new KeyFileProblem(WRONG_PASSPHRASE);
  return section;
}

function modulusBits(key: ssh2.ParsedKey): number | undefined {
  try {
    return createPublicKey(key.getPublicPEM()).asymmetricKeyDetails?.modulusLength;
  } catch {
    return undefined;
  }
}

export function preparePrivateKey(key: string, passphrase?: string): PreparedKey {
  if (key.trim() === "") return { ok: false, problem: "must not be empty" };
  let usable = key;
  let usablePassphrase = passphrase || undefined;
  try {
    if (isOpenSshKeyFile(key)) {
      const file = readOpenSshKeyFile(key);
      if (file.kdfName === "bcrypt") {
        if (!passphrase) return { ok: false, problem: WRONG_PASSPHRASE };
        usable = unencryptedKeyFile(file.publicKey, decryptPrivateSection(file, passphrase));
        usablePassphrase = undefined;
      }
    }
  } catch (error) {
    if (error instanceof KeyFileProblem) return { ok: false, problem: error.message };
    throw error;
  }
  const parsed = ssh2.utils.parseKey(usable, usablePassphrase);
  if (parsed instanceof Error) {
    return { ok: false, problem: /encrypted|passphrase/i.test(parsed.message) ? WRONG_PASSPHRASE : "is not a valid private key" };
  }
  const first = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!first?.isPrivateKey()) return { ok: false, problem: "is a public key, a private key is required" };
  const bits = modulusBits(first);
  if (bits !== undefined && bits > MAX_KEY_BITS) {
    return { ok: false, problem: `is a ${bits}-bit ${first.type} key; at most ${MAX_KEY_BITS} bits are accepted` };
  }
  return {
    ok: true,
    privateKey: usable,
    passphrase: usablePassphrase,
    publicKey: `${first.type} ${first.getPublicSSH().toString("base64")}`,
  };
}
