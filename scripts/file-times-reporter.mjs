// A node:test reporter that writes each test file's wall time, one line "<seconds>\t<file>", for
// the summary scripts/test.sh prints at the end of `npm test`. Files run one after another
// (--test-concurrency=1), so a file's time is from the end of the previous file (or the start of
// the run) to its own last event: process start, imports, before/after hooks and its tests.
import { relative } from "node:path";

export default async function* fileTimes(source) {
  const runStarted = Date.now();
  const lastEvent = new Map();
  for await (const event of source) {
    const file = event.data?.file;
    if (file) lastEvent.set(file, Date.now());
  }
  let previous = runStarted;
  for (const [file, end] of [...lastEvent].sort((a, b) => a[1] - b[1])) {
    yield `${((end - previous) / 1000).toFixed(1)}\t${relative(process.cwd(), file)}\n`;
    previous = end;
  }
}
