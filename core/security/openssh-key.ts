/**
 * The openssh-key-v1 container (OpenSSH's PROTOCOL.key), read without
 * decrypting anything: cipher, KDF and its rounds are known before any
 * expensive work, so a hostile header is refused in microseconds.
 *
 *   "openssh-key-v1\0" string ciphername, string kdfname, string kdfoptions
 *   (bcrypt: string salt, uint32 rounds), uint32 number of keys,
 *   string public key (× n), string private section [, GCM auth tag]
 */

/** OpenSSH's own default (`ssh-keygen -a`) is 16; each round costs tens of milliseconds of CPU. */
export const MAX_KDF_ROUNDS = 64;
/** OpenSSH writes 16-byte salts. */
export const MAX_SALT_BYTES = 64;

/** Ciphers a key file may be encrypted with, as Node's OpenSSL names them (what ssh-keygen -Z offers, AES only). */
export const KEY_CIPHERS: Record<string, { sslName: string; keyLen: number; ivLen: number; blockLen: number; authLen: number }> = {
  "aes128-ctr": { sslName: "aes-128-ctr", keyLen: 16, ivLen: 16, blockLen: 16, authLen: 0 },
  "aes192-ctr": { sslName: "aes-192-ctr", keyLen: 24, ivLen: 16, blockLen: 16, authLen: 0 },
  "aes256-ctr": { sslName: "aes-256-ctr", keyLen: 32, ivLen: 16, blockLen: 16, authLen: 0 },
  "aes128-cbc": { sslName: "aes-128-cbc", keyLen: 16, ivLen: 16, blockLen: 16, authLen: 0 },
  "aes192-cbc": { sslName: "aes-192-cbc", keyLen: 24, ivLen: 16, blockLen: 16, authLen: 0 },
  "aes256-cbc": { sslName: "aes-256-cbc", keyLen: 32, ivLen: 16, blockLen: 16, authLen: 0 },
  "aes128-gcm@openssh.com": { sslName: "aes-128-gcm", keyLen: 16, ivLen: 12, blockLen: 16, authLen: 16 },
  "aes256-gcm@openssh.com": { sslName: "aes-256-gcm", keyLen: 32, ivLen: 12, blockLen: 16, authLen: 16 },
};

export interface OpenSshKeyFile {
  cipherName: string;
  kdfName: "none" | "bcrypt";
  salt: Buffer;
  rounds: number;
  publicKey: Buffer;
  privateSection: Buffer;
  authTag: Buffer;
}

/** A key file this service will not parse; the message completes "credential.private_key.key: ...". */
export class KeyFileProblem extends Error {}

const ARMOR = /^-----BEGIN OPENSSH PRIVATE KEY-----\r?\n([A-Za-z0-9+/=\s]+)\r?\n-----END OPENSSH PRIVATE KEY-----$/;
const MAGIC = Buffer.from("openssh-key-v1\0", "latin1");

class Reader {
  private pos = 0;
  constructor(private readonly data: Buffer) {}
  uint32(): number {
    if (this.pos + 4 > this.data.length) throw new KeyFileProblem("is not a valid private key");
    const v = this.data.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  bytes(max = this.data.length): Buffer {
    const length = this.uint32();
    if (length > max || this.pos + length > this.data.length) throw new KeyFileProblem("is not a valid private key");
    const v = this.data.subarray(this.pos, this.pos + length);
    this.pos += length;
    return v;
  }
  text(max: number): string {
    return this.bytes(max).toString("latin1");
  }
  rest(): Buffer {
    const v = this.data.subarray(this.pos);
    this.pos = this.data.length;
    return v;
  }
}

const sshString = (value: Buffer | string): Buffer => {
  const body = typeof value === "string" ? Buffer.from(value, "latin1") : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
};

/** Whether the text is meant to be an openssh-key-v1 file (other formats ssh2 reads have no KDF to cap). */
export const isOpenSshKeyFile = (key: string): boolean => key.trim().startsWith("-----BEGIN OPENSSH PRIVATE KEY-----");

/** Reads the container; throws KeyFileProblem for anything malformed, unsupported or too expensive to decrypt. */
export function readOpenSshKeyFile(key: string): OpenSshKeyFile {
  const armored = ARMOR.exec(key.trim());
  if (!armored?.[1]) throw new KeyFileProblem("is not a valid private key");
  const data = Buffer.from(armored[1].replace(/\s+/g, ""), "base64");
  if (data.length < MAGIC.length || !data.subarray(0, MAGIC.length).equals(MAGIC)) throw new KeyFileProblem("is not a valid private key");
  const reader = new Reader(data.subarray(MAGIC.length));
  const cipherName = reader.text(64);
  const kdfName = reader.text(64);
  const kdfOptions = reader.bytes(MAX_SALT_BYTES + 8);
  const cipher = KEY_CIPHERS[cipherName];
  if (cipherName !== "none" && !cipher) {
    throw new KeyFileProblem(
      `is encrypted with ${JSON.stringify(cipherName.slice(0, 40))}; supported: ${Object.keys(KEY_CIPHERS).join(", ")}`,
    );
  }
  if (kdfName !== "none" && kdfName !== "bcrypt")
    throw new KeyFileProblem(`uses the KDF ${JSON.stringify(kdfName.slice(0, 40))}; only bcrypt is supported`);
  if ((cipherName === "none") !== (kdfName === "none")) throw new KeyFileProblem("is not a valid private key");
  let salt: Buffer = Buffer.alloc(0);
  let rounds = 0;
  if (kdfName === "bcrypt") {
    const options = new Reader(kdfOptions);
    salt = options.bytes(MAX_SALT_BYTES);
    rounds = options.uint32();
    if (salt.length === 0 || options.rest().length !== 0) throw new KeyFileProblem("is not a valid private key");
    if (rounds < 1 || rounds > MAX_KDF_ROUNDS) {
      throw new KeyFileProblem(`declares ${rounds} bcrypt KDF rounds; at most ${MAX_KDF_ROUNDS} are accepted (OpenSSH's default is 16)`);
    }
  } else if (kdfOptions.length !== 0) {
    throw new KeyFileProblem("is not a valid private key");
  }
  const count = reader.uint32();
  if (count !== 1) throw new KeyFileProblem(`holds ${count} keys; exactly one is accepted`);
  const publicKey = reader.bytes(4096);
  const privateSection = reader.bytes();
  const authTag = reader.rest();
  const blockLen = cipher?.blockLen ?? 8;
  if (privateSection.length < 8 || privateSection.length % blockLen !== 0 || authTag.length !== (cipher?.authLen ?? 0)) {
    throw new KeyFileProblem("is not a valid private key");
  }
  return { cipherName, kdfName, salt, rounds, publicKey, privateSection, authTag };
}

/** The same key as an unencrypted file, from its decrypted private section: ssh2 then parses it without a KDF. */
export function unencryptedKeyFile(publicKey: Buffer, privateSection: Buffer): string {
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const file = Buffer.concat([
    MAGIC,
    sshString("none"),
    sshString("none"),
    sshString(""),
    count,
    sshString(publicKey),
    sshString(privateSection),
  ]);
  const lines = file.toString("base64").match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`;
}
