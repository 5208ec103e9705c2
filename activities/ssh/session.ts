import { createHash } from "node:crypto";
import { ApplicationFailure } from "@temporalio/common";
import { NodeSSH } from "node-ssh";
import { displaySafe } from "../../core/kernel/text.js";
import type { SshCredentialInput } from "../../core/kernel/validation.js";
import { defaultNetworkPolicy, type NetworkPolicy, RefusedByPolicy, resolveAllowedAddress } from "../../core/security/network-policy.js";
import { becomeFailure, becomeRoot, becomeStdin } from "./become.js";
import { classifyConnectError, SshErrorType, sshFailure } from "./errors.js";
import type { ShellFragment } from "./shell.js";

export interface SshTarget {
  host: string;
  port: number;
  username: string;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  truncated: boolean;
}

export interface RunOptions {
  /** Run as root: through `sudo` when the login user is not root. Default true. */
  root?: boolean;
  timeoutMs?: number;
  /** A non-zero exit is returned instead of thrown. */
  allowFailure?: boolean;
  stdin?: string;
  /** Sees stderr as it arrives (the remote-step helper reads the command's process group from it). */
  onStderr?: (chunk: Buffer) => void;
  /** Sees stdout as it arrives (the remote-step helper counts it). */
  onStdout?: (chunk: Buffer) => void;
}

export interface SshSession {
  /** SHA256 fingerprint of the host key, as `ssh-keygen -lf` prints it. */
  readonly fingerprint: string;
  run(command: ShellFragment, options?: RunOptions): Promise<CommandResult>;
  /** Uploads a file over SFTP as the login user (a relative path is in its home); `mode` is set at creation. */
  upload(localPath: string, remotePath: string, mode?: number): Promise<void>;
  /** Ties the session to a caller's cancellation: an abort closes the connection. Replaces the previous signal. */
  attach(signal: AbortSignal | undefined): void;
  /** Still connected and usable for another command. */
  isOpen(): boolean;
  close(): void;
}

export interface OpenOptions {
  /** The pinned fingerprint; a different key refuses the connection before authentication. */
  pinnedFingerprint?: string | null;
  connectTimeoutMs?: number;
  /** Cancels the connection attempt and, until `attach` replaces it, the session. */
  signal?: AbortSignal;
  /** Which addresses may be connected to; default: the built-in policy without operator lists. */
  networkPolicy?: NetworkPolicy;
  /** Whose server: its name is resolved as this owner's lookup (core/security/name-resolution.ts). */
  owner?: string;
  /** The password `sudo` asks the login user for (activities/ssh/become.ts); default: the login password, if any. */
  becomePassword?: string;
  /** How failures name the server (default: user@host). */
  serverName?: string;
}

/** Resolves once and checks every address; ssh2 then connects to the checked address, never resolving again. */
async function allowedAddress(target: SshTarget, options: OpenOptions): Promise<string> {
  try {
    return await resolveAllowedAddress(
      options.networkPolicy ?? defaultNetworkPolicy(),
      target.host,
      options.connectTimeoutMs ?? 10_000,
      options.owner,
    );
  } catch (error) {
    if (error instanceof RefusedByPolicy) throw sshFailure(SshErrorType.RefusedByPolicy, error.message);
    const code = (error as { code?: string }).code ?? "";
    throw sshFailure(SshErrorType.Unreachable, `cannot resolve ${target.host}${code ? ` (${code})` : ""}`);
  }
}

const MAX_OUTPUT = 64 * 1024;

/** The key a host presented when it was refused for differing from the pin (a HostKeyMismatch failure). */
export function presentedFingerprint(error: unknown): string | undefined {
  if (!(error instanceof ApplicationFailure) || error.type !== SshErrorType.HostKeyMismatch) return undefined;
  const details = error.details?.[0] as { fingerprint?: unknown } | undefined;
  return typeof details?.fingerprint === "string" ? details.fingerprint : undefined;
}

export const fingerprintOf = (key: Buffer): string => `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;

/** Keeps the last MAX_OUTPUT bytes: the end of a failing command's output is what explains it. */
class CappedBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  push(chunk: Buffer) {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > MAX_OUTPUT && this.chunks.length > 1) {
      this.size -= (this.chunks.shift() as Buffer).length;
      this.truncated = true;
    }
  }
  toString() {
    const all = Buffer.concat(this.chunks);
    if (all.length <= MAX_OUTPUT) return all.toString("utf8").trim();
    this.truncated = true;
    return all
      .subarray(all.length - MAX_OUTPUT)
      .toString("utf8")
      .trim();
  }
}

export async function openSsh(target: SshTarget, credential: SshCredentialInput, options: OpenOptions = {}): Promise<SshSession> {
  const address = await allowedAddress(target, options);
  // A cancellation that came while the name resolved has already fired: no listener would see it.
  options.signal?.throwIfAborted();
  const ssh = new NodeSSH();
  let seen = "";
  let refused = false;
  const abort = () => ssh.dispose();
  options.signal?.addEventListener("abort", abort, { once: true });
  try {
    await ssh.connect({
      host: address,
      port: target.port,
      username: target.username,
      readyTimeout: options.connectTimeoutMs ?? 10_000,
      keepaliveInterval: 10_000,
      ...(credential.kind === "password"
        ? { password: credential.password, tryKeyboard: false }
        : { privateKey: credential.privateKey, passphrase: credential.passphrase || undefined }),
      hostVerifier: (key: Buffer) => {
        seen = fingerprintOf(key);
        refused = Boolean(options.pinnedFingerprint) && options.pinnedFingerprint !== seen;
        return !refused;
      },
    });
  } catch (error) {
    options.signal?.removeEventListener("abort", abort);
    ssh.dispose();
    if (options.signal?.aborted) throw options.signal.reason;
    if (refused) {
      throw sshFailure(
        SshErrorType.HostKeyMismatch,
        `the host key differs from the pinned ${options.pinnedFingerprint}: the host presents ${seen}; connection refused`,
        { fingerprint: seen },
      );
    }
    throw classifyConnectError(error, refused);
  }

  // The connect signal (its listener is already in place) guards the session until `attach` replaces it.
  let signal = options.signal;
  const attach = (next: AbortSignal | undefined) => {
    signal?.removeEventListener("abort", abort);
    signal = next;
    signal?.addEventListener("abort", abort, { once: true });
  };
  let closed = false;
  // A connection error after login (the host went away while the session idled in the pool) ends the session, not the worker.
  ssh.connection?.on("error", () => {
    closed = true;
  });

  const sudoPassword = options.becomePassword ?? (credential.kind === "password" ? credential.password : undefined);
  const who = `${options.serverName ? `server ${options.serverName} ` : ""}(${target.username}@${target.host})`;
  const asRoot = (command: ShellFragment, stdin: string | undefined): { text: string; stdin?: string } => {
    if (target.username === "root") return { text: command.text, stdin };
    if (sudoPassword) return { text: becomeRoot(command, true).text, stdin: becomeStdin(sudoPassword, stdin) };
    return { text: becomeRoot(command, false).text, stdin };
  };

  return {
    fingerprint: seen,
    async run(command, runOptions = {}) {
      const asUser = runOptions.root === false || target.username === "root";
      const { text, stdin } = asUser ? { text: command.text, stdin: runOptions.stdin } : asRoot(command, runOptions.stdin);
      const stdout = new CappedBuffer();
      const stderr = new CappedBuffer();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        ssh.dispose();
      }, runOptions.timeoutMs ?? 120_000);
      try {
        const result = await ssh.execCommand(text, {
          stdin,
          onStdout: (c) => {
            stdout.push(c);
            runOptions.onStdout?.(c);
          },
          onStderr: (c) => {
            stderr.push(c);
            runOptions.onStderr?.(c);
          },
        });
        if (timedOut) throw sshFailure(SshErrorType.Timeout, `remote command timed out after ${runOptions.timeoutMs ?? 120_000} ms`);
        if (signal?.aborted) throw signal.reason;
        const out: CommandResult = {
          code: result.code ?? -1,
          stdout: stdout.toString(),
          stderr: stderr.toString(),
          truncated: stdout.truncated || stderr.truncated,
        };
        const refused = asUser ? undefined : becomeFailure(out.code, out.stderr, who);
        if (refused) throw refused;
        if (out.code !== 0 && !runOptions.allowFailure) {
          throw sshFailure(
            SshErrorType.CommandFailed,
            `remote command exited with ${out.code}: ${displaySafe(out.stderr.slice(-500) || out.stdout.slice(-500))}`,
          );
        }
        return out;
      } catch (error) {
        if (timedOut) throw sshFailure(SshErrorType.Timeout, `remote command timed out after ${runOptions.timeoutMs ?? 120_000} ms`);
        if (signal?.aborted) throw signal.reason;
        if (!ssh.isConnected()) throw sshFailure(SshErrorType.Unreachable, "SSH connection lost during a command");
        throw error;
      } finally {
        clearTimeout(timer);
      }
    },
    async upload(localPath, remotePath, mode = 0o600) {
      await ssh.putFile(localPath, remotePath, null, { mode });
    },
    attach,
    isOpen: () => !closed && ssh.isConnected(),
    close() {
      closed = true;
      attach(undefined);
      ssh.dispose();
    },
  };
}
