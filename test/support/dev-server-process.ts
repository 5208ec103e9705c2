/**
 * Runs the embedded-dev-server launcher in a process of its own (as `npm start` does), so that a
 * test can kill it with SIGKILL and see what the next start does with the dev server left behind.
 * Usage: dev-server-process.ts <data folder> <port>; prints {"pid": <dev server pid>} once it answers.
 */
import { startDevServer } from "../../temporal/dev-server.js";

const [dataDir, port] = process.argv.slice(2);
const dev = await startDevServer(dataDir as string, { port: Number(port), headless: true });
console.log(JSON.stringify({ pid: dev.pid }));
setInterval(() => {}, 60_000);
