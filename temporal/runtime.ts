import { ApplicationFailure, type Logger, type LogLevel, type LogMetadata } from "@temporalio/common";
import { type LogExporterConfig, Runtime, type TelemetryOptions } from "@temporalio/worker";
import { errorSummary, logger } from "../core/kernel/log.js";

const pinoLevel: Record<LogLevel, "trace" | "debug" | "info" | "warn" | "error"> = {
  TRACE: "trace",
  DEBUG: "debug",
  INFO: "info",
  WARN: "warn",
  ERROR: "error",
};

/** An error in the SDK's metadata (a failed activity or workflow task): its summary; a typed failure's own message too. */
function safeMeta(meta: LogMetadata | undefined): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta ?? {})) {
    if (value instanceof Error) {
      fields[key] = {
        ...errorSummary(value),
        ...(value instanceof ApplicationFailure ? { failureType: value.type, message: value.message } : {}),
      };
    } else if (typeof value !== "bigint") fields[key] = value;
  }
  return fields;
}

/** The Temporal SDK's logger (worker, workflow and activity context loggers, forwarded Core logs) on the service's pino. */
export function runtimeLogger(): Logger {
  const write = (level: LogLevel, message: string, meta?: LogMetadata) => logger[pinoLevel[level]](safeMeta(meta), message);
  return {
    log: write,
    trace: (message, meta) => write("TRACE", message, meta),
    debug: (message, meta) => write("DEBUG", message, meta),
    info: (message, meta) => write("INFO", message, meta),
    warn: (message, meta) => write("WARN", message, meta),
    error: (message, meta) => write("ERROR", message, meta),
  };
}

/** Core's (Rust) own logs are forwarded to that logger instead of printed to the console in its own format. */
export function nativeLogForwarding(): LogExporterConfig {
  return { filter: { core: "WARN", other: "ERROR" }, forward: {} };
}

/**
 * Installs the Temporal runtime with the service's logging (and the SDK's Prometheus metrics when given). Once per process,
 * before any NativeConnection or Worker exists (the SDK otherwise installs its default).
 */
export function installRuntime(metrics?: Pick<TelemetryOptions, "metrics">): Runtime {
  return Runtime.install({ logger: runtimeLogger(), telemetryOptions: { logging: nativeLogForwarding(), ...metrics } });
}
