import { readFileSync } from "node:fs";
import { CliError } from "./errors.js";

/** Flags that would put a secret on the command line (shell history, `ps`), with the safe way instead. */
const refused: Record<string, string> = {
  "--password":
    "use --password-stdin (e.g. `axion servers add … --password-stdin < file`), or for a provider account AXION_PROVIDER_PASSWORD or the prompt",
  "--become-password": "use --become-password-stdin (e.g. `axion servers add … --become-password-stdin < file`) or --ask-become-password",
  "--token": "use --token-stdin, the prompt of axion login, or the AXION_TOKEN environment variable",
  "--passphrase": "answer the prompt or set AXION_KEY_PASSPHRASE",
  "--private-key": "use --key-file PATH",
  "--key": "use --key-file PATH",
  "--secret": "use --secret-stdin or the prompt of axion channels create",
  "--url": "use --url-stdin or the prompt of axion channels create (a Slack URL is a credential)",
};

const refusal = (what: string, safe: string) =>
  CliError.usage(`${what} is refused: a secret on the command line lands in shell history and ps; ${safe}`);

/**
 * Refuses a secret given as an argument before anything else runs (exit 2): the secret flags above, a value
 * given to a `--…-stdin` flag (yargs would read `--password-stdin=hunter2` as false and carry on), and a
 * `user:password` pair as a provider account's `--username`.
 */
export function refuseSecretArguments(argv: string[]): void {
  for (const [i, arg] of argv.entries()) {
    if (arg === "--") return;
    const eq = arg.indexOf("=");
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const safe = refused[flag];
    if (safe) throw refusal(flag, safe);
    if (eq >= 0 && /^--[\w-]+-stdin$/.test(flag)) throw refusal(`a value for ${flag}`, `${flag} takes none: pipe the secret in on stdin`);
    const username = flag === "--username" ? (eq < 0 ? argv[i + 1] : arg.slice(eq + 1)) : undefined;
    if (username?.includes(":"))
      throw refusal("--username user:password", "give the user name alone and the password with --password-stdin");
  }
}

/** All of stdin, without the trailing newline. */
export function readStdin(what: string): string {
  if (process.stdin.isTTY) throw CliError.usage(`${what}: stdin is a terminal; pipe the secret in (e.g. < file)`);
  const text = readFileSync(0, "utf8").replace(/\r?\n$/, "");
  if (text === "") throw CliError.usage(`${what}: stdin was empty`);
  return text;
}

/** Asks on the terminal with echo off; refuses without a terminal (nothing to ask). */
export async function promptSecret(question: string, hint: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) throw CliError.usage(`no terminal to ask on: ${hint}`);
  // Echo off before the question shows: what is typed as soon as it appears is not echoed either.
  input.setRawMode(true);
  process.stderr.write(question);
  input.resume();
  input.setEncoding("utf8");
  return new Promise((resolve, reject) => {
    let value = "";
    const done = (error?: CliError) => {
      input.setRawMode(false);
      input.pause();
      input.off("data", onData);
      process.stderr.write("\n");
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") return done();
        if (ch === "\u0003") return done(CliError.usage("cancelled"));
        if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
        else value += ch;
      }
    };
    input.on("data", onData);
  });
}
