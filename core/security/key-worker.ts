import { parentPort } from "node:worker_threads";
import { type PreparedKey, preparePrivateKey } from "./private-key.js";

/** A key-parsing thread (core/security/key-parsing.ts): one task at a time, answered by id. */
parentPort?.on("message", (task: { id: number; key: string; passphrase?: string }) => {
  let result: PreparedKey;
  try {
    result = preparePrivateKey(task.key, task.passphrase);
  } catch {
    result = { ok: false, problem: "is not a valid private key" };
  }
  parentPort?.postMessage({ id: task.id, result });
});
parentPort?.postMessage({ ready: true });
