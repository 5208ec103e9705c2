// test lane: fast
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { test } from "node:test";
import { freePort } from "./support/ports.js";

/** Binds 127.0.0.1:port the way a process that did not ask for that port gets one: without SO_REUSEADDR. */
function bindWithoutReuse(port: number): string {
  const script = `import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", ${port})); print("bound")
except OSError as e:
    print(e.strerror)`;
  return spawnSync("python3", ["-c", script], { encoding: "utf8" }).stdout.trim();
}

// CI: a dev server's `--port` from freePort() was taken by someone else before the server bound it.
test("a port from freePort() is kept from other processes' sockets, and a server bound to it explicitly gets it", async () => {
  const port = await freePort();
  assert.equal(bindWithoutReuse(port), "Address already in use", "the kernel hands the port to no socket that did not ask for it");
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  await new Promise((resolve) => server.close(resolve));
});
