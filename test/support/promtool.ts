import { execFile } from "node:child_process";

/**
 * `promtool check metrics` over a scrape: what it printed (its warnings and lint problems) and its
 * exit code. promtool comes with Debian's `prometheus` package (scripts/install-test-deps.sh).
 */
export function promtoolCheckMetrics(scrape: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile("promtool", ["check", "metrics"], { encoding: "utf8" }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return reject(error);
      resolve({ code: typeof error?.code === "number" ? error.code : 0, output: stdout + stderr });
    });
    child.stdin?.end(scrape);
  });
}
