import { AsyncLocalStorage } from "node:async_hooks";
import { pino } from "pino";

/**
 * JSON-lines logger on pino (stdout: `level`, `time`, `msg`, then fields).
 * Callers pass ids and outcomes, never credentials or tokens; secret-shaped
 * fields are redacted anyway, in case one slips through.
 */
export type Level = "debug" | "info" | "warn" | "error";
type Fields = Record<string, unknown>;

/** What every line written while serving one RPC, or running one activity, carries. */
export interface LogContext {
  requestId?: string;
  operationId?: string;
  workflowId?: string;
  runId?: string;
  activityType?: string;
}

const context = new AsyncLocalStorage<LogContext>();

/** Runs `work` with `fields` added to every line it logs (nested contexts keep the outer fields). */
export function withLogContext<T>(fields: LogContext, work: () => T): T {
  return context.run({ ...context.getStore(), ...fields }, work);
}

export function currentLogContext(): LogContext | undefined {
  return context.getStore();
}

/** Field names that hold secrets wherever they appear. */
export const SECRET_FIELDS = [
  "password",
  "passphrase",
  "privateKey",
  "private_key",
  "token",
  "accessToken",
  "access_token",
  "refreshToken",
  "refresh_token",
  "idToken",
  "id_token",
  "codeVerifier",
  "code_verifier",
  "agentToken",
  "ownerToken",
  "adminToken",
  "taskToken",
  "authorization",
  "Authorization",
  "cookie",
  "secret",
  "clientSecret",
  "client_secret",
  "signingKey",
  "signature",
  "credential",
  "credentials",
  "credentialsKey",
  "CREDENTIALS_KEY",
  "OIDC_CLIENT_SECRET",
  "apiKey",
  "api_key",
];

/** pino's redaction takes explicit paths: each secret field at the top and up to four levels deep. */
export const redactPaths = SECRET_FIELDS.flatMap((field) => [0, 1, 2, 3, 4].map((depth) => [...Array(depth).fill("*"), field].join(".")));

const levels: Level[] = ["debug", "info", "warn", "error"];
const envLevel = process.env.LOG_LEVEL as Level;

/**
 * The process' pino logger; `log` below is the call shape the code uses.
 * Lines up to info go to stdout, warn and error to stderr, through the process'
 * streams (synchronous for files and pipes).
 */
export const logger = pino(
  {
    level: levels.includes(envLevel) ? envLevel : "info",
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: redactPaths, censor: "[redacted]" },
    mixin: () => context.getStore() ?? {},
  },
  pino.multistream(
    [
      { level: "trace", stream: process.stdout },
      { level: "warn", stream: process.stderr },
    ],
    { dedupe: true },
  ),
);

export function setLogLevel(level: Level): void {
  logger.level = level;
}

export const log = {
  debug: (msg: string, fields?: Fields) => logger.debug(fields ?? {}, msg),
  info: (msg: string, fields?: Fields) => logger.info(fields ?? {}, msg),
  warn: (msg: string, fields?: Fields) => logger.warn(fields ?? {}, msg),
  error: (msg: string, fields?: Fields) => logger.error(fields ?? {}, msg),
};

/** An error and its causes, outermost first (drizzle wraps the driver's error in `cause`). */
function causeChain(error: Error): object[] {
  const chain: object[] = [];
  for (let e: unknown = error; e && typeof e === "object" && chain.length < 5 && !chain.includes(e); e = (e as { cause?: unknown }).cause)
    chain.push(e);
  return chain;
}

const className = (e: object): string => {
  const name = (e as { name?: unknown }).name;
  return typeof name === "string" && name !== "Error" ? name : (e.constructor?.name ?? "Error");
};

/**
 * The stack without its first line(s), which repeat the message. Any message
 * may span lines (and a client's text can look like a frame), so the header is
 * cut off exactly; a stack that does not start with it is left out.
 */
function stackFrames(error: Error): string | undefined {
  const header = String(error);
  if (!error.stack?.startsWith(header)) return undefined;
  return error.stack
    .slice(header.length)
    .split("\n")
    .filter((line) => /^\s+at /.test(line))
    .slice(0, 3)
    .map((line) => line.trim())
    .join(" | ");
}

/**
 * What is safe to log about an unexpected error: its class, the driver's class,
 * SQLSTATE (or system error code), constraint and stack frames. Never its message,
 * `detail`, `query` or `params`: drizzle's message quotes the query and every
 * parameter, PostgreSQL's detail quotes the conflicting values.
 */
export function errorSummary(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { errorType: typeof error };
  const chain = causeChain(error);
  const pick = (key: string, pattern: RegExp): string | undefined => {
    for (const e of chain) {
      const value = (e as Record<string, unknown>)[key];
      if (typeof value === "string" && pattern.test(value)) return value;
    }
    return undefined;
  };
  const driver = chain.length > 1 ? chain[chain.length - 1] : undefined;
  return {
    errorType: className(error),
    causeType: driver && className(driver),
    code: pick("code", /^[A-Za-z0-9_]{1,40}$/),
    constraint: pick("constraint_name", /^[A-Za-z0-9_]{1,63}$/) ?? pick("constraint", /^[A-Za-z0-9_]{1,63}$/),
    stack: stackFrames(error),
  };
}
