import { runRemoteStep } from "../ssh/remote-step.js";
import type { SshSession } from "../ssh/session.js";
import { joinShell, type ShellFragment, sh } from "../ssh/shell.js";
import { badAnswer } from "./answer.js";

/** The most a fact's answer may hold; one byte more is read to tell a longer answer apart. */
export const MAX_FACT_BYTES = 4096;
/** Seconds a fact's command may take on the host before it is killed. */
export const FACT_SECONDS = 8;

/**
 * The facts read from a host, each by the command that answers it, named as an
 * operator knows them (the name is how an error about the answer begins).
 */
const factCommands = {
  "uname -m": sh`uname -m`,
  "uname -r": sh`uname -r`,
  "/etc/os-release": sh`cat /etc/os-release`,
  "df /": sh`df -Pm /`,
  MemTotal: sh`grep -m1 MemTotal /proc/meminfo`,
  // The client pings the daemon even for --version, which socket-activates a stopped Docker: pointed nowhere.
  "docker --version": sh`DOCKER_HOST=unix:///nonexistent/docker.sock docker --version`,
  HOME: sh`printf '%s' "$HOME"`,
} satisfies Record<string, ShellFragment>;

export type FactName = keyof typeof factCommands;
/** Facts only some hosts have: absent from the answer when the command is not installed. */
const optional: Partial<Record<FactName, string>> = { "docker --version": "docker" };

/**
 * Each answer is cut on the host to MAX_FACT_BYTES + 1 bytes within FACT_SECONDS
 * and sent hex-encoded on a line of its own, so no answer can pose as another.
 */
function factsScript(names: readonly FactName[]): ShellFragment {
  const lines = names.map((name, i) => {
    const run = sh`timeout -k 2 ${FACT_SECONDS} sh -c ${factCommands[name].text} 2>/dev/null | head -c ${MAX_FACT_BYTES + 1} | od -An -v -tx1 | tr -d ' \\n'`;
    const needs = optional[name];
    const fact = sh`v=$(${run}); printf 'fact%s %s\\n' ${i} "$v"`;
    return needs ? sh`if command -v ${needs} >/dev/null 2>&1; then ${fact}; fi` : fact;
  });
  return joinShell(lines);
}

/** Reads `names` from the host in one command: each fact's raw answer (bounded), absent for an optional fact not installed. */
export async function readHostAnswers(session: SshSession, names: readonly FactName[]): Promise<Map<FactName, Buffer>> {
  const { stdout } = await runRemoteStep(session, factsScript(names), {
    root: false,
    // Every fact may use its whole time; the rest is the login and a loaded host's slack.
    timeoutMs: names.length * (FACT_SECONDS + 3) * 1000 + 15_000,
    step: "facts",
  });
  const answers = new Map<FactName, Buffer>();
  for (const line of stdout.split("\n")) {
    if (line === "") continue;
    // An empty answer ends with its separator, which the trimmed output may have lost.
    const match = /^fact(\d{1,2})(?: ([0-9a-f]*))?$/.exec(line);
    const name = match ? names[Number(match[1])] : undefined;
    if (!match || !name) throw badAnswer("facts", "answered a line that is no fact", line);
    if (answers.has(name)) throw badAnswer(name, "answered twice");
    const raw = Buffer.from(match[2] ?? "", "hex");
    if (raw.length > MAX_FACT_BYTES) throw badAnswer(name, `answered more than ${MAX_FACT_BYTES} bytes`, raw.subarray(0, 64));
    answers.set(name, raw);
  }
  for (const name of names) if (!answers.has(name) && !optional[name]) throw badAnswer(name, "no answer");
  return answers;
}

/** One fact's raw answer. */
export async function readHostAnswer(session: SshSession, name: FactName): Promise<Buffer> {
  return (await readHostAnswers(session, [name])).get(name) ?? Buffer.alloc(0);
}
