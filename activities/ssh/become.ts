import type { ApplicationFailure } from "@temporalio/common";
import { displaySafe } from "../../core/kernel/text.js";
import { SshErrorType, sshFailure } from "./errors.js";
import { type ShellFragment, sh } from "./shell.js";

/**
 * How a root step runs for a login user other than root. Without a password:
 * `sudo -n`. With one, the password is the first line of the command's stdin
 * (never an argument or an environment variable: a process listing shows
 * both); the host reads that line itself, so it never reaches the step, then:
 *  - sudo that needs no password (NOPASSWD) runs the step with the rest of stdin;
 *  - otherwise the password is checked alone (one line on sudo's stdin: a wrong
 *    one cannot make sudo read the step's script as further attempts) and, if
 *    refused, the step ends before anything ran as root, with a mark the
 *    orchestrator classifies;
 *  - then sudo -k -S -p '' gets the password line followed by the rest of stdin
 *    (the script a step sends): sudo reads exactly one line, the step the rest.
 * printf is a builtin of the host's sh: the password is in no process's argv or environ.
 */

export const BECOME_MARK = "AXION_BECOME";
/** The exit code of a refused become; with the mark as the only stderr. */
const BECOME_EXIT = 125;

export function becomeRoot(command: ShellFragment, withPassword: boolean): ShellFragment {
  if (!withPassword) return sh`sudo -n -- sh -c ${command.text}`;
  return sh`IFS= read -r axion_become || { echo ${`${BECOME_MARK} failed: no password line`} >&2; exit ${BECOME_EXIT}; }
if sudo -k -n true 2>/dev/null; then axion_become=; exec sudo -n -- sh -c ${command.text}; fi
if ! why=$(printf '%s\\n' "$axion_become" | LC_ALL=C sudo -k -S -p '' true 2>&1); then
  axion_become=
  case $why in
    *"incorrect password"*|*"Sorry, try again"*) echo ${`${BECOME_MARK} refused`} >&2 ;;
    *"not in the sudoers"*|*"not allowed to"*|*"may not run sudo"*) echo ${`${BECOME_MARK} denied`} >&2 ;;
    *) printf '%s failed: %s\\n' ${BECOME_MARK} "$(printf '%s' "$why" | head -c 300 | tr '\\n' ' ')" >&2 ;;
  esac
  exit ${BECOME_EXIT}
fi
{ printf '%s\\n' "$axion_become"; exec cat; } | sudo -k -S -p '' -- sh -c ${command.text}`;
}

/** The command's stdin with the password line first. */
export const becomeStdin = (password: string, stdin: string | undefined): string => `${password}\n${stdin ?? ""}`;

/**
 * The classified failure of a become that did not happen, or undefined when the
 * command ran (its own failure, if any, is the caller's). Only the exact shape
 * the become prelude leaves counts: the step's own output cannot pose as one.
 */
export function becomeFailure(code: number, stderr: string, who: string): ApplicationFailure | undefined {
  if (code === 1 && /^sudo: a (terminal is required|password is required)/m.test(stderr) && !stderr.includes("AXION_STEP_SID")) {
    return sshFailure(SshErrorType.SudoNotAllowed, `sudo asks ${who} for a password and the server has no become password set`);
  }
  if (code !== BECOME_EXIT) return undefined;
  const line = stderr.trim();
  if (line.includes("\n") || !line.startsWith(`${BECOME_MARK} `)) return undefined;
  const what = line.slice(BECOME_MARK.length + 1);
  if (what === "refused")
    return sshFailure(SshErrorType.SudoPasswordRefused, `sudo password refused: sudo did not accept the become password of ${who}`);
  if (what === "denied")
    return sshFailure(SshErrorType.SudoNotAllowed, `sudo not allowed: ${who} may not run commands as root through sudo`);
  return sshFailure(SshErrorType.SudoNotAllowed, `sudo did not run for ${who}: ${displaySafe(what.slice(0, 320))}`);
}
