import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ProviderCredentialsSchema } from "../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import type { SshCredentialSchema } from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { CliError } from "./errors.js";
import { promptSecret, readStdin } from "./secrets.js";

/** Whether an OpenSSH or PEM private key is encrypted (it then needs a passphrase). */
export function keyIsEncrypted(key: string): boolean {
  if (/Proc-Type: 4,ENCRYPTED|BEGIN ENCRYPTED PRIVATE KEY/.test(key)) return true;
  const body = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(key)?.[1];
  if (!body) return false;
  const bytes = Buffer.from(body.replace(/\s+/g, ""), "base64");
  const magic = "openssh-key-v1\0";
  if (bytes.subarray(0, magic.length).toString("latin1") !== magic) return false;
  const length = bytes.readUInt32BE(magic.length);
  return bytes.subarray(magic.length + 4, magic.length + 4 + length).toString("latin1") !== "none";
}

const expandHome = (path: string) => (path.startsWith("~/") ? `${homedir()}${path.slice(1)}` : path);

/**
 * The SSH credential from --key-file (passphrase from AXION_KEY_PASSPHRASE or a prompt, only when the key
 * is encrypted) or --password-stdin; undefined when neither is given.
 */
export async function credentialFrom(argv: {
  "key-file"?: string;
  "password-stdin"?: boolean;
}): Promise<MessageInitShape<typeof SshCredentialSchema> | undefined> {
  if (argv["key-file"] && argv["password-stdin"]) throw CliError.usage("give either --key-file or --password-stdin, not both");
  if (argv["password-stdin"]) return { method: { case: "password", value: readStdin("--password-stdin") } };
  if (!argv["key-file"]) return undefined;
  let key: string;
  try {
    key = readFileSync(expandHome(argv["key-file"]), "utf8");
  } catch (error) {
    throw CliError.usage(
      `--key-file ${argv["key-file"]}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : "cannot be read"}`,
    );
  }
  let passphrase = process.env.AXION_KEY_PASSPHRASE ?? "";
  if (passphrase === "" && keyIsEncrypted(key)) {
    passphrase = await promptSecret(`Passphrase for ${argv["key-file"]}: `, "the key is encrypted: set AXION_KEY_PASSPHRASE");
  }
  return { method: { case: "privateKey", value: { key, passphrase } } };
}

/**
 * The become (sudo) password from --become-password-stdin or --ask-become-password (a prompt with echo off);
 * "" with --clear-become-password (update); undefined when none of them is given.
 */
export async function becomePasswordFrom(argv: {
  "become-password-stdin"?: boolean;
  "ask-become-password"?: boolean;
  "clear-become-password"?: boolean;
  "password-stdin"?: boolean;
}): Promise<string | undefined> {
  const given = [argv["become-password-stdin"], argv["ask-become-password"], argv["clear-become-password"]].filter(Boolean).length;
  if (given > 1) throw CliError.usage("give one of --become-password-stdin, --ask-become-password, --clear-become-password");
  if (argv["clear-become-password"]) return "";
  if (argv["become-password-stdin"]) {
    if (argv["password-stdin"]) throw CliError.usage("stdin holds one secret: use --ask-become-password with --password-stdin");
    return readStdin("--become-password-stdin");
  }
  if (argv["ask-become-password"]) {
    const password = await promptSecret("sudo (become) password: ", "use --become-password-stdin");
    if (password === "") throw CliError.usage("--ask-become-password: the password was empty");
    return password;
  }
  return undefined;
}

/**
 * A provider account's credentials: the user name as given, the password from --password-stdin, else
 * AXION_PROVIDER_PASSWORD, else an echo-off prompt on the terminal.
 */
export async function providerCredentialsFrom(
  username: string,
  passwordStdin: boolean | undefined,
  where: string,
): Promise<MessageInitShape<typeof ProviderCredentialsSchema>> {
  if (username === "") throw CliError.usage("--username must not be empty");
  const password = passwordStdin
    ? readStdin("--password-stdin")
    : process.env.AXION_PROVIDER_PASSWORD ||
      (await promptSecret(`Password of ${username} at ${where}: `, "give --password-stdin or set AXION_PROVIDER_PASSWORD"));
  if (password === "") throw CliError.usage("the provider password must not be empty");
  return { username, password };
}
