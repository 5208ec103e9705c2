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
