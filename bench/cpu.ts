import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** CPU accounting from /proc, shared by the benchmarks. */
const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));

function statFields(path: string): string[] {
  const stat = readFileSync(path, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** user + system CPU seconds of one process (all its threads, not its children). */
export function processCpuS(pid: number): number {
  const f = statFields(`/proc/${pid}/stat`);
  return (Number(f[11]) + Number(f[12])) / clockTicks;
}

/** CPU seconds of a process's live threads, summed by thread name (V8 workers, libuv pool, tokio, the main thread). */
export function threadCpuS(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      const f = statFields(`/proc/${pid}/task/${tid}/stat`);
      const key = tid === String(pid) ? `main(${name})` : name;
      out[key] = (out[key] ?? 0) + (Number(f[11]) + Number(f[12])) / clockTicks;
    } catch {
      /* the thread ended */
    }
  }
  return out;
}
