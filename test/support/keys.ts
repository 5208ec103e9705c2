import ssh2 from "ssh2";

/** Real OpenSSH key pairs made by ssh2 (the same parser the API validates with). */
export function ed25519KeyPair(passphrase?: string): { privateKey: string; publicKey: string } {
  const pair = passphrase
    ? ssh2.utils.generateKeyPairSync("ed25519", { passphrase, cipher: "aes256-ctr", rounds: 16 })
    : ssh2.utils.generateKeyPairSync("ed25519");
  return { privateKey: pair.private, publicKey: pair.public };
}
