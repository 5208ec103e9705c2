import { workerData } from "node:worker_threads";

// Worker threads do not inherit tsx's loader hooks: register them when the entry is TypeScript.
if (workerData.entry.endsWith(".ts")) (await import("tsx/esm/api")).register();
await import(workerData.entry);
