import ssh2 from "ssh2";

/**
 * Real OpenSSH key pairs made by ssh2 (the same parser the API validates with).
 * ssh2's generator writes a malformed ed25519 key about once in 300 (a 31-byte
 * public key: a leading zero byte dropped), which its own parser then refuses,
 * so a pair is made again until it parses.
 */
export function ed25519KeyPair(passphrase?: string, rounds = 16): { privateKey: string; publicKey: string } {
  for (;;) {
    const pair = passphrase
      ? ssh2.utils.generateKeyPairSync("ed25519", { passphrase, cipher: "aes256-ctr", rounds })
      : ssh2.utils.generateKeyPairSync("ed25519");
    const parsed = ssh2.utils.parseKey(pair.private, passphrase);
    if (!(parsed instanceof Error)) return { privateKey: pair.private, publicKey: pair.public };
  }
}
