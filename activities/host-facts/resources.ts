import { badAnswer, oneLine, wholeNumber } from "./answer.js";

/** `uname -r`: a kernel release. */
export const kernelOf = (raw: Buffer): string => oneLine("uname -r", raw, 64, /^[A-Za-z0-9._+~-]+$/, "a kernel release");

/** `df -Pm /`: the MB available on /, from POSIX df's one data line. */
export function rootFreeMbOf(raw: Buffer): number {
  if (raw.length === 0) throw badAnswer("df /", "no answer");
  const lines = raw.toString("utf8").replace(/\n$/, "").split("\n");
  if (lines.length !== 2)
    throw badAnswer("df /", `answered ${lines.length} lines, a header and one line expected`, lines.slice(0, 3).join("\n"));
  const row = oneLine("df /", Buffer.from(lines[1] ?? ""), 512, /^\S+( +\S+){5}$/, "a df line of six columns");
  return wholeNumber("df / available", row.split(/ +/)[3] ?? "", 1e12);
}

/** `MemTotal` of /proc/meminfo, in MB. */
export function memoryMbOf(raw: Buffer): number {
  const line = oneLine("MemTotal", raw, 64, /^MemTotal: +\d+ kB$/, "a MemTotal line");
  return Math.floor(wholeNumber("MemTotal", line.split(/ +/)[1] ?? "", 1e15) / 1024);
}

/** `docker --version`: the client's version ("Docker version 24.0.7, build afdd53b"). */
export function dockerVersionOf(raw: Buffer): string {
  const line = oneLine("docker --version", raw, 200, /^Docker version [0-9A-Za-z.+~_-]{1,64}(,.*)?$/, "a Docker version line");
  return (/^Docker version ([^,]+)/.exec(line) as RegExpExecArray)[1] as string;
}

/** `$HOME` of the login user: an absolute path of plain characters, no `..` (it names where uploads go on the host). */
export function homeOf(raw: Buffer): string {
  const home = oneLine("HOME", raw, 200, /^\/[A-Za-z0-9._/-]*$/, "an absolute path");
  if (home.split("/").includes("..")) throw badAnswer("HOME", "is not a plain path", home);
  return home;
}
