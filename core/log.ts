/** JSON-lines logger. Callers pass ids and outcomes, never credentials or tokens. */
type Level = "debug" | "info" | "warn" | "error";
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
let threshold: Level = (process.env.LOG_LEVEL as Level) in order ? (process.env.LOG_LEVEL as Level) : "info";

export function setLogLevel(level: Level): void {
  threshold = level;
}

function write(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (order[level] < order[threshold]) return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
  (level === "error" || level === "warn" ? process.stderr : process.stdout).write(`${line}\n`);
}

export const log = {
  debug: (msg: string, fields?: Record<string, unknown>) => write("debug", msg, fields),
  info: (msg: string, fields?: Record<string, unknown>) => write("info", msg, fields),
  warn: (msg: string, fields?: Record<string, unknown>) => write("warn", msg, fields),
  error: (msg: string, fields?: Record<string, unknown>) => write("error", msg, fields),
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
