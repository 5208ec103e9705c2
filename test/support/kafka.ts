import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type IHeaders, Kafka, logLevel } from "kafkajs";
import { freePort } from "./ports.js";

const scripts = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "scripts", "kafka");

export interface TestKafka {
  brokers: string[];
  /** Takes the broker down (SIGTERM: a clean shutdown; SIGKILL: a crash). Its data stays. */
  pause(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts it again on the same ports with the same data; resolves when it serves clients. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real, throwaway single-node KRaft Kafka (Apache's jars from Maven Central, run by
 * scripts/kafka/start.sh) in a temporary folder on free loopback ports.
 */
export async function startKafka(): Promise<TestKafka> {
  execFileSync("bash", [join(scripts, "install.sh")], { stdio: ["ignore", "ignore", "inherit"] });
  const dir = mkdtempSync(join(tmpdir(), "axion-kafka-"));
  const port = await freePort();
  const controllerPort = await freePort();
  let child: ChildProcess | undefined;
  const killOnExit = () => child?.kill("SIGKILL");
  process.once("exit", killOnExit);

  const launch = async () => {
    const logPath = join(dir, "kafka.log");
    const out = openSync(logPath, "w");
    child = spawn("bash", [join(scripts, "start.sh"), String(port), dir], {
      stdio: ["ignore", out, out],
      env: { ...process.env, KAFKA_CONTROLLER_PORT: String(controllerPort) },
    });
    closeSync(out);
    const deadline = Date.now() + 120_000;
    while (!readFileSync(logPath, "utf8").includes("Kafka Server started")) {
      if (child.exitCode !== null) throw new Error(`kafka exited with code ${child.exitCode}; see ${logPath}`);
      if (Date.now() > deadline) throw new Error(`kafka not ready after 120 s; see ${logPath}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const halt = async (signal: NodeJS.Signals) => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((r) => running.once("exit", r));
    running.kill(signal);
    await exited;
  };

  await launch();
  return {
    brokers: [`127.0.0.1:${port}`],
    pause: (signal = "SIGTERM") => halt(signal),
    resume: launch,
    stop: async () => {
      await halt("SIGTERM");
      process.off("exit", killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ReadMessage {
  partition: number;
  offset: string;
  key: string | undefined;
  headers: Record<string, string>;
  value: string;
}

/** Every message on the topic, from the beginning up to its end at the time of the call. */
export async function readTopic(brokers: string[], topic: string): Promise<ReadMessage[]> {
  const kafka = new Kafka({ clientId: "axion-test-reader", brokers, logLevel: logLevel.ERROR });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  await admin.disconnect();
  const messages: ReadMessage[] = [];
  const pending = new Set([...ends].filter(([, high]) => high > 0n).map(([partition]) => partition));
  if (pending.size === 0) return messages;
  const consumer = kafka.consumer({ groupId: `axion-test-reader-${randomUUID()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachMessage: async ({ partition, message }) => {
          const end = ends.get(partition) ?? 0n;
          if (BigInt(message.offset) >= end) return;
          messages.push({
            partition,
            offset: message.offset,
            key: message.key?.toString(),
            headers: headersToStrings(message.headers),
            value: message.value?.toString() ?? "",
          });
          if (BigInt(message.offset) + 1n >= end) pending.delete(partition);
          if (pending.size === 0) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return messages;
}

function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) result[name] = String(Array.isArray(value) ? value[0] : value);
  return result;
}
