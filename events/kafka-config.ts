import { Kafka, type LogEntry, logLevel } from "kafkajs";
import { log } from "../core/kernel/log.js";

const levels = {
  [logLevel.NOTHING]: undefined,
  [logLevel.ERROR]: log.error,
  [logLevel.WARN]: log.warn,
  [logLevel.INFO]: log.info,
  [logLevel.DEBUG]: log.debug,
} as const;

/**
 * Lines kafkajs repeats many times a second while a broker is down, or on every (re)created
 * idempotent producer with bounded retries (deliberate: the relay retries whole batches itself).
 * Callers log the failure that matters once per attempt, so these go to debug.
 */
const expected = /^(Connection error|Failed to connect to seed broker|Limiting retries for the idempotent producer)/;

/** Routes kafkajs' own log lines to core/kernel/log.ts (JSON lines), tagged `component: "kafkajs"`. */
function toCoreLog(entry: LogEntry): void {
  const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry.log;
  const write = expected.test(message) ? log.debug : levels[entry.level];
  write?.(`kafkajs: ${message}`, { component: "kafkajs", namespace: entry.namespace, ...fields });
}

/**
 * The one kafkajs client factory: WARN and above go to core/kernel/log.ts; connection and retry
 * timings are short, because callers (the outbox relay) retry with their own backoff.
 */
export function createKafka(options: { brokers: string[]; clientId: string }): Kafka {
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    logLevel: logLevel.WARN,
    logCreator: () => toCoreLog,
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { initialRetryTime: 200, maxRetryTime: 2_000, retries: 3 },
  });
}
