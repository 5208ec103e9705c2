/**
 * Where a process spent its CPU (`node --import tsx bench/profile-summary.ts <dir or .cpuprofile>... [--from µs --to µs] [--top 40]`):
 * reads V8 CPU profiles (node --cpu-prof writes one per thread; bench/rollout.ts --profile-worker
 * does it for the worker and prints the measured phase's window), keeps the samples inside the
 * window, and prints the busiest self-time functions, self time by package (node_modules/<pkg>,
 * a project folder, node internals, the VM's own "(program)"/"(garbage collector)"), and
 * inclusive time of the project's own functions (a frame counted once per sample).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { root } from "./stack.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const from = Number(option("--from") ?? 0);
const to = Number(option("--to") ?? Number.POSITIVE_INFINITY);
const top = Number(option("--top") ?? 40);
const paths = args.filter((a, i) => !a.startsWith("--") && !["--from", "--to", "--top"].includes(args[i - 1] ?? ""));
const files = paths.flatMap((p) =>
  statSync(p).isDirectory()
    ? readdirSync(p)
        .filter((f) => f.endsWith(".cpuprofile"))
        .map((f) => join(p, f))
    : [p],
);

function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith("(") ? functionName : "(native)";
  const path = url.replace(/^file:\/\//, "");
  const nm = path.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = path.slice(nm + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? path);
  }
  if (path.startsWith("node:")) return "node internals";
  if (path.startsWith(root)) return `project ${relative(root, path).split("/")[0]}/`;
  return path.split("/").slice(0, 3).join("/") || "(other)";
}

const selfByFunction = new Map<string, number>();
const selfByPackage = new Map<string, number>();
const inclusiveProject = new Map<string, number>();
let totalUs = 0;
const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  let t = profile.startTime;
  let fileUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (t < from || t > to) continue;
    // A sample stands for the time until the next one.
    const us = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i] as number);
    if (!node || node.callFrame.functionName === "(idle)") continue;
    fileUs += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${url.replace(`file://${root}/`, "").replace(/^.*node_modules\//, "")}:${lineNumber + 1}` : "";
    add(selfByFunction, `${functionName || "(anonymous)"} ${where}`, us);
    add(selfByPackage, packageOf(url, functionName), us);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)?.callFrame;
      if (!frame?.url.includes(root) || frame.url.includes("node_modules")) continue;
      const key = `${frame.functionName || "(anonymous)"} ${frame.url.replace(`file://${root}/`, "")}:${frame.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      add(inclusiveProject, key, us);
    }
  }
  totalUs += fileUs;
  console.log(`${file}: ${(fileUs / 1e6).toFixed(2)} s busy in the window`);
}

const print = (title: string, map: Map<string, number>, n: number) => {
  console.log(`\n${title}`);
  for (const [key, us] of [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`  ${(us / 1e6).toFixed(3).padStart(8)} s ${((us / Math.max(1, totalUs)) * 100).toFixed(1).padStart(5)} %  ${key}`);
  }
};
console.log(`\ntotal busy: ${(totalUs / 1e6).toFixed(2)} s`);
print("self time by package", selfByPackage, 30);
print("self time by function", selfByFunction, top);
print("inclusive time of project functions", inclusiveProject, top);
