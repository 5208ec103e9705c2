import { Code, ConnectError } from "@connectrpc/connect";
import { CliError, Exit, type ExitCode } from "./errors.js";
import { outside } from "./output.js";

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
  if (error instanceof CliError) return { message: oneLine(error.message), exitCode: error.exitCode };
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

/** The API's and a host's words reach the operator's terminal escaped (cli/output.ts). */
const oneLine = (text: string) => outside(text).trim();
