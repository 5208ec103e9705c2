import { SpanStatusCode, trace } from "@opentelemetry/api";
import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import { displaySafe } from "../../core/kernel/text.js";
import { FailureType } from "../../workflows/failure-types.js";
import { SshErrorType, sshFailure } from "./errors.js";
import type { CommandResult, RunOptions, SshSession } from "./session.js";
import { type ShellFragment, sh } from "./shell.js";

/**
 * The one way an activity runs a command on a server. While the command runs
 * the activity heartbeats (so a slow step is not mistaken for a dead worker and
 * retried beside itself); the command runs as the leader of its own session on
 * the host (`setsid`), so a cancellation or a timeout kills everything it
 * started (apt, dpkg, maintainer scripts) through the same SSH connection before
 * the activity reports that it stopped. Output is capped by the session.
 */

export const HEARTBEAT_EVERY_MS = 3000;
const DEFAULT_TIMEOUT_MS = 120_000;
const SESSION_MARK = "AXION_STEP_SID";
/** How long a killed command may take to end before the connection is closed on it. */
const STOP_GRACE_MS = 10_000;
/** The most output (stdout and stderr together) a step may send: beyond it the command is killed and the step fails. */
export const MAX_STEP_OUTPUT_BYTES = 4 * 1024 * 1024;

/** The command as the leader of a new session: it prints its session id first, then becomes the command. */
export function inOwnSession(command: ShellFragment): ShellFragment {
  const leader = `printf '${SESSION_MARK} %s\\n' "$$" >&2; exec sh -c "$1"`;
  return sh`setsid -w sh -c ${leader} axion-step ${command.text}`;
}

/**
 * TERM to every process of the step's session and their descendants (a child
 * that started a session of its own, as apt does for dpkg's pty, is still
 * found through its parent), KILL to what is left after 5 s; ends once none is alive.
 */
export function killSessionScript(sid: number): ShellFragment {
  const tree = `{ ppid[$1] = $2; if ($3 == s) keep[$1] = 1 }
END { do { n = 0; for (p in ppid) if (!(p in keep) && (ppid[p] in keep)) { keep[p] = 1; n++ } } while (n); for (p in keep) print p }`;
  return sh`tree=$(ps -eo pid=,ppid=,sid= | awk -v s=${sid} ${tree})
[ -n "$tree" ] || exit 0
alive() { for p in $tree; do st=$(ps -o stat= -p "$p" 2>/dev/null) && [ "\${st#Z}" = "$st" ] && return 0; done; return 1; }
kill -TERM $tree 2>/dev/null
for i in $(seq 1 50); do alive || exit 0; sleep 0.1; done
kill -KILL $tree 2>/dev/null
for i in $(seq 1 50); do alive || exit 0; sleep 0.1; done
exit 1`;
}

function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** Heartbeats every few seconds while `work` runs (outside an activity it just runs `work`). */
export async function heartbeating<T>(work: () => Promise<T>, detail?: unknown): Promise<T> {
  const context = activityContext();
  if (!context) return work();
  context.heartbeat(detail);
  const timer = setInterval(() => context.heartbeat(detail), HEARTBEAT_EVERY_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

const stripMark = (text: string) =>
  text
    .split("\n")
    .filter((l) => !l.startsWith(`${SESSION_MARK} `))
    .join("\n")
    .trim();

export interface StepOptions extends RunOptions {
  /** The step's name for its trace span (default: the activity's type); never the command text. */
  step?: string;
}

/**
 * Runs `command` on the server (as root unless `root: false`), heartbeating;
 * a non-zero exit throws unless `allowFailure`. On cancellation the remote
 * session is killed first, then the activity's cancellation is thrown. Each
 * step is a span `ssh <step>` (with tracing on): its name, exit code and
 * failure type, never the command, its arguments or its output.
 */
export function runRemoteStep(session: SshSession, command: ShellFragment, options: StepOptions = {}): Promise<CommandResult> {
  const { step, ...runOptions } = options;
  const name = step ?? activityContext()?.info.activityType ?? "command";
  return trace.getTracer("axion-ssh").startActiveSpan(`ssh ${name}`, { attributes: { "axion.ssh.step": name } }, async (span) => {
    try {
      const result = await runInOwnSession(session, command, runOptions, name);
      span.setAttribute("axion.ssh.exit_code", result.code);
      return result;
    } catch (error) {
      const type = error instanceof ApplicationFailure ? error.type : undefined;
      span.setStatus({ code: SpanStatusCode.ERROR, message: type ?? "error" });
      throw error;
    } finally {
      span.end();
    }
  });
}

async function runInOwnSession(session: SshSession, command: ShellFragment, options: RunOptions, name: string): Promise<CommandResult> {
  const context = activityContext();
  const signal = context?.cancellationSignal;
  if (signal?.aborted) throw signal.reason;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  let sid: number | undefined;
  let sidSeen: () => void = () => {};
  const sidKnown = new Promise<void>((resolve) => {
    sidSeen = resolve;
  });
  let head = "";
  let received = 0;
  let tooMuch = false;
  const count = (chunk: Buffer) => {
    received += chunk.length;
    if (received > MAX_STEP_OUTPUT_BYTES && !tooMuch) {
      tooMuch = true;
      void stop();
    }
  };
  const onStderr = (chunk: Buffer) => {
    count(chunk);
    options.onStderr?.(chunk);
    if (sid !== undefined || head.length > 4096) return;
    head += chunk.toString("utf8");
    const match = head.match(new RegExp(`${SESSION_MARK} (\\d+)\\n`));
    if (match) {
      sid = Number(match[1]);
      sidSeen();
    }
  };

  let stopping: Promise<void> | undefined;
  let lastResort: NodeJS.Timeout | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await Promise.race([sidKnown, new Promise((r) => setTimeout(r, STOP_GRACE_MS))]);
      if (sid !== undefined) {
        await session.run(killSessionScript(sid), { root: options.root, timeoutMs: 20_000, allowFailure: true }).catch(() => undefined);
      }
      // The command should end with its session; if the channel stays open, close the connection on it.
      lastResort = setTimeout(() => session.close(), STOP_GRACE_MS);
    })();
    return stopping;
  };
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void stop();
  }, timeoutMs);
  const onAbort = () => void stop();
  // Cancellation is handled here (kill the remote session, then let the channel close), not by dropping the connection.
  session.attach(undefined);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const result = await heartbeating(() =>
      session.run(inOwnSession(command), {
        ...options,
        timeoutMs: timeoutMs + 3 * STOP_GRACE_MS,
        allowFailure: true,
        onStderr,
        onStdout: count,
      }),
    );
    if (signal?.aborted || timedOut || tooMuch) throw new Error("stopped");
    const out = { ...result, stderr: stripMark(result.stderr) };
    if (out.code !== 0 && !options.allowFailure) {
      throw sshFailure(
        SshErrorType.CommandFailed,
        `${name}: remote command exited with ${out.code}: ${displaySafe(out.stderr.slice(-500) || out.stdout.slice(-500))}`,
      );
    }
    return out;
  } catch (error) {
    if (signal?.aborted) {
      await stopping;
      throw signal.reason;
    }
    if (timedOut) {
      await stopping;
      throw sshFailure(SshErrorType.Timeout, `${name}: remote command timed out after ${timeoutMs} ms and was killed`);
    }
    if (tooMuch) {
      await stopping;
      throw ApplicationFailure.nonRetryable(
        `${name}: answered more than ${MAX_STEP_OUTPUT_BYTES / 1024 / 1024} MB; the command was killed`,
        FailureType.HostAnswerInvalid,
      );
    }
    throw error;
  } finally {
    clearTimeout(timer);
    clearTimeout(lastResort);
    signal?.removeEventListener("abort", onAbort);
    if (session.isOpen()) session.attach(signal);
  }
}
