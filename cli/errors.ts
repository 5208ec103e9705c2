import { Code, ConnectError } from "@connectrpc/connect";

/** Exit codes: what a script can rely on. */
export const Exit = { ok: 0, failed: 1, usage: 2, notFound: 3, unreachable: 4, interrupted: 130 } as const;
export type ExitCode = (typeof Exit)[keyof typeof Exit];

/** An error the CLI reports as one line and an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
  static usage(message: string): CliError {
    return new CliError(message, Exit.usage);
  }
  static notFound(message: string): CliError {
    return new CliError(message, Exit.notFound);
  }
  static failed(message: string): CliError {
    return new CliError(message, Exit.failed);
  }
}

const exitForCode: Partial<Record<Code, ExitCode>> = {
  [Code.InvalidArgument]: Exit.usage,
  [Code.NotFound]: Exit.notFound,
  [Code.PermissionDenied]: Exit.notFound,
  [Code.Unauthenticated]: Exit.notFound,
  [Code.Unavailable]: Exit.unreachable,
  [Code.DeadlineExceeded]: Exit.unreachable,
};

/** Any error as the one line and exit code the user sees; never a stack trace. */
export function describeError(error: unknown, api?: string): { message: string; exitCode: ExitCode } {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode };
  if (error instanceof ConnectError) {
    // A transport failure carries the network error as its cause; an Unavailable the API sent has none.
    const unreachable = exitForCode[error.code] === Exit.unreachable && error.cause !== undefined;
    const mapped = exitForCode[error.code] ?? Exit.failed;
    const exitCode = unreachable || mapped !== Exit.unreachable ? mapped : Exit.failed;
    if (unreachable) {
      return { message: `cannot reach the API at ${api ?? "?"}: ${oneLine(error.rawMessage)}`, exitCode };
    }
    if (error.code === Code.Unauthenticated) {
      return { message: `not logged in or the token is no longer valid (${oneLine(error.rawMessage)}): run axion login`, exitCode };
    }
    return { message: `${Code[error.code]}: ${oneLine(error.rawMessage)}`, exitCode };
  }
  return { message: oneLine(error instanceof Error ? error.message : String(error)), exitCode: Exit.failed };
}

const oneLine = (text: string) => text.replace(/\s+/g, " ").trim();
