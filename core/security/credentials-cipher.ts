import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AppError } from "../kernel/errors.js";

/**
 * AES-256-GCM envelope for credentials at rest:
 *   v1.<key id>.<iv b64url>.<auth tag b64url>.<ciphertext b64url>
 * The key id (first 16 hex characters of the key's SHA-256) lets several keys be
 * configured at once: the first encrypts, all of them decrypt, so the master key
 * can rotate. Additional authenticated data binds a ciphertext to its row.
 */
export interface CredentialsCipher {
  readonly activeKeyId: string;
  encrypt(plaintext: string, associatedData: string): string;
  decrypt(envelope: string, associatedData: string): string;
}

const VERSION = "v1";

function keyId(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}

/** Parses one base64 or hex 32-byte key. */
function parseKey(text: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, "hex") : Buffer.from(trimmed, "base64");
  if (key.length !== 32) {
    throw new Error("CREDENTIALS_KEY must be 32 bytes, given as 64 hex characters or base64");
  }
  return key;
}

export function createCredentialsCipher(keysSpec: string): CredentialsCipher {
  const keys = keysSpec
    .split(",")
    .filter((k) => k.trim() !== "")
    .map(parseKey);
  if (keys.length === 0) throw new Error("CREDENTIALS_KEY is empty");
  const byId = new Map(keys.map((k) => [keyId(k), k]));
  const active = keys[0] as Buffer;
  const activeKeyId = keyId(active);

  return {
    activeKeyId,
    encrypt(plaintext, associatedData) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", active, iv);
      cipher.setAAD(Buffer.from(associatedData));
      const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [VERSION, activeKeyId, iv.toString("base64url"), tag.toString("base64url"), ciphertext.toString("base64url")].join(".");
    },
    decrypt(envelope, associatedData) {
      const [version, id, iv, tag, ciphertext] = envelope.split(".");
      if (version !== VERSION || !id || !iv || !tag || ciphertext === undefined) {
        throw new AppError("internal", "stored credential has an unknown format");
      }
      const key = byId.get(id);
      if (!key) throw new AppError("internal", `stored credential was encrypted with key ${id}, which is not configured`);
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
      decipher.setAAD(Buffer.from(associatedData));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
      try {
        return Buffer.concat([decipher.update(Buffer.from(ciphertext, "base64url")), decipher.final()]).toString("utf8");
      } catch (cause) {
        throw new AppError("internal", "stored credential failed authentication", { cause });
      }
    },
  };
}

/**
 * Embedded default: with no CREDENTIALS_KEY, a key is generated once into the
 * data folder (mode 0600) and reused. Returns the key spec and whether it is local.
 */
export function resolveCredentialsKey(configured: string | undefined, dataDir: string): { spec: string; generatedFile?: string } {
  if (configured) return { spec: configured };
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, "credentials.key");
  if (!existsSync(file)) {
    writeFileSync(file, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600, flag: "wx" });
  }
  chmodSync(file, 0o600);
  return { spec: readFileSync(file, "utf8").trim(), generatedFile: file };
}
