import { isIPv4, isIPv6 } from "node:net";
import { z } from "zod";
import { type KeyParsingPool, sharedKeyParsing } from "../security/key-parsing.js";
import type { NetworkPolicy } from "../security/network-policy.js";
import { isOpenSshKeyFile, KeyFileProblem, readOpenSshKeyFile } from "../security/openssh-key.js";
import { AppError } from "./errors.js";
import { providerKinds } from "./kinds.js";
import { excerpt, hasUnsafeCharacters } from "./text.js";

/**
 * Field rules for everything a client sends. `parseInput` turns the first
 * violation into an InvalidArgument AppError that names the field (proto naming).
 */

/**
 * The rule every free-text field starts from: at most `max` characters and no NUL
 * or control character (tab and newlines only where the text may span lines).
 * Fields with a tighter shape (names, users) use a regex instead. Invalid UTF-8
 * never gets this far: the protobuf decoder refuses it.
 */
export function cleanText(max: number, options: { multiline?: boolean } = {}) {
  return z
    .string()
    .max(max, `must be at most ${max} characters`)
    .refine(
      (v) => !hasUnsafeCharacters(v, options),
      options.multiline
        ? "must not contain NUL or control characters other than tab and newline"
        : "must not contain NUL or control characters",
    );
}

/** How a client's value may appear inside an error message: short, with control characters escaped. */
export function shown(value: unknown, max = 40): string {
  return excerpt(value, max);
}

const dnsLabel = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** Forms a resolver reads as an IPv4 address (inet_aton: "127.1", "0x7f.0.0.1", "2130706433"): not names. */
const numericAddressForm = /^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$/i;

export function isValidHost(host: string): boolean {
  if (isIPv4(host) || isIPv6(host)) return true;
  if (host.length > 253 || /^[0-9.]+$/.test(host) || numericAddressForm.test(host)) return false;
  return host
    .replace(/\.$/, "")
    .split(".")
    .every((label) => dnsLabel.test(label));
}

export const resourceName = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/,
    "must be 1-63 lower-case letters, digits, '.' or '-', starting and ending with a letter or digit",
  );

export const host = z.string().refine(isValidHost, "must be an IPv4 address, an IPv6 address or a DNS name");

export const sshPort = z.number().int().min(1, "must be between 1 and 65535").max(65535, "must be between 1 and 65535");

/** POSIX portable user names, as useradd accepts them: nothing a shell would interpret. */
export const sshUser = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be 1-32 characters: lower-case letters, digits, '_' or '-', not starting with a digit or '-'");

/** Kubernetes label rules: an optional DNS-subdomain prefix and "/", a name of at most 63 characters. */
export const labelKey = /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[a-z0-9A-Z]([a-z0-9A-Z._-]{0,61}[a-z0-9A-Z])?$/;
export const labelValue = /^([a-z0-9A-Z]([a-z0-9A-Z._-]{0,61}[a-z0-9A-Z])?)?$/;

export const labels = z.record(z.string(), z.string()).superRefine((value, ctx) => {
  const entries = Object.entries(value);
  if (entries.length > 64) ctx.addIssue({ code: "custom", message: "at most 64 labels" });
  for (const [k, v] of entries) {
    if (!labelKey.test(k)) ctx.addIssue({ code: "custom", message: `key ${shown(k)} is not a valid label key`, path: [k] });
    else if (!labelValue.test(v))
      ctx.addIssue({ code: "custom", message: `value of ${shown(k)} must be at most 63 letters, digits, '.', '_' or '-'`, path: [k] });
  }
});

/** Empty clears; otherwise a provider this service has a client for. */
export const providerName = z
  .string()
  .refine((v) => v === "" || (providerKinds as readonly string[]).includes(v), `must be empty or one of: ${providerKinds.join(", ")}`);
export const providerServerId = z.string().regex(/^[0-9]{0,20}$/, "must be the provider's numeric server id");

export const description = cleanText(1024, { multiline: true });

/** Secrets are typed at a prompt or piped to `sudo -S` as one line: no control character can belong in one. */
export const secretText = (max: number) => cleanText(max);

/** A server's become password, fed to `sudo -S` as one line; on update "" clears it. */
export const becomePassword = secretText(1024);

export type SshCredentialInput = { kind: "private_key"; privateKey: string; passphrase?: string } | { kind: "password"; password: string };

export const sshCredential = z
  .discriminatedUnion("kind", [
    z.object({
      kind: z.literal("private_key"),
      privateKey: cleanText(16384, { multiline: true }),
      passphrase: secretText(1024).optional(),
    }),
    z.object({
      kind: z.literal("password"),
      password: secretText(1024).min(1, "must not be empty"),
    }),
  ])
  .superRefine((cred, ctx) => {
    if (cred.kind !== "private_key") return;
    const problem = privateKeyHeaderProblem(cred.privateKey);
    if (problem) ctx.addIssue({ code: "custom", message: problem, path: ["private_key", "key"] });
  });

/** Cheap, on the event loop: an openssh-key-v1 header that is malformed or asks for too many KDF rounds. */
export function privateKeyHeaderProblem(key: string): string | undefined {
  if (key.trim() === "") return "must not be empty";
  if (!isOpenSshKeyFile(key)) return undefined;
  try {
    readOpenSshKeyFile(key);
    return undefined;
  } catch (error) {
    if (error instanceof KeyFileProblem) return error.message;
    throw error;
  }
}

/**
 * Parses (and decrypts) the key with ssh2's own parser, so a key the SSH layer
 * cannot use is refused at the door: in a key-parsing thread under a deadline.
 */
export async function privateKeyProblem(
  ownerId: string,
  key: string,
  passphrase?: string,
  parsing = sharedKeyParsing(),
): Promise<string | undefined> {
  const header = privateKeyHeaderProblem(key);
  if (header) return header;
  const prepared = await parsing.prepare({ ownerId, key, passphrase: passphrase || undefined });
  return prepared.ok ? undefined : prepared.problem;
}

/** After `parseInput`: InvalidArgument on `host` for an address or a name the network policy refuses (core/security/network-policy.ts). */
export function requireAllowedHost(policy: NetworkPolicy, value: string | undefined): void {
  if (value === undefined) return;
  const problem = policy.hostProblem(value);
  if (problem) throw AppError.invalid("host", `refused by policy: ${problem}`);
}

/** The async step after `parseInput`: InvalidArgument on `credential.private_key.key` for a key that cannot be used. */
export async function requireUsableCredential(
  ownerId: string,
  credential: SshCredentialInput | undefined,
  parsing?: KeyParsingPool,
): Promise<void> {
  if (credential?.kind !== "private_key") return;
  const problem = await privateKeyProblem(ownerId, credential.privateKey, credential.passphrase, parsing);
  if (problem) throw AppError.invalid("credential.private_key.key", problem);
}

/** Field names in error messages follow the proto (snake_case). */
const protoName = (segment: PropertyKey): string => String(segment).replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Where an internal input shape is flatter than the proto message, the proto path of its fields. */
const flattenedFields: Record<string, string> = {
  "credential.private_key": "credential.private_key.key",
  "credential.passphrase": "credential.private_key.passphrase",
};

export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue?.path ?? [];
  // Label keys are data, not field names: report them inside the message instead.
  const labelsAt = path.indexOf("labels");
  const fieldPath = labelsAt >= 0 ? path.slice(0, labelsAt + 1) : path;
  const name = fieldPath.map(protoName).join(".") || "request";
  const field = flattenedFields[name] ?? name;
  throw AppError.invalid(field, issue?.message ?? "is invalid");
}

/** google.protobuf.Timestamp's own range, 0001-01-01 to 9999-12-31 (UTC), which every reader and the database can hold. */
const TIMESTAMP_SECONDS = { min: -62_135_596_800n, max: 253_402_300_799n } as const;

/** A Timestamp as a Date, or InvalidArgument naming the field when it is outside the range a Timestamp may hold. */
export function timestampField(field: string, value: { seconds: bigint; nanos: number }): Date {
  if (value.seconds < TIMESTAMP_SECONDS.min || value.seconds > TIMESTAMP_SECONDS.max || value.nanos < 0 || value.nanos > 999_999_999) {
    throw AppError.invalid(field, "must be a time from 0001-01-01 to 9999-12-31");
  }
  return new Date(Number(value.seconds) * 1000 + Math.floor(value.nanos / 1_000_000));
}
