import { ConfigError, loadConfig } from "../core/kernel/config.js";
import { log, setLogLevel } from "../core/kernel/log.js";
import { temporalMetricsTelemetry } from "../observability/metrics.js";
import { startTracing, stopTracing } from "../observability/tracing.js";
import { installRuntime } from "../temporal/runtime.js";
import { type Role, startService } from "./service.js";

const roles: Role[] = ["all", "api", "worker"];
const role = (process.argv[2] ?? "all") as Role;
if (!roles.includes(role)) {
  console.error(`usage: main.ts [${roles.join("|")}]`);
  process.exit(2);
}

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(2);
}
setLogLevel(config.LOG_LEVEL);
// Once per process, before any worker or native connection exists: the SDK's logs on pino, its metrics to Prometheus.
installRuntime(role !== "api" ? temporalMetricsTelemetry(config.TEMPORAL_METRICS_ADDRESS) : undefined);
await startTracing({
  endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
  serviceName: config.OTEL_SERVICE_NAME,
  role,
  sampleRatio: config.OTEL_TRACES_SAMPLE_RATIO,
});

const service = await startService(config, role);
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal, graceSeconds: config.SHUTDOWN_GRACE_SECONDS });
    // Whatever hangs, the process ends soon after the grace period (activities then retry elsewhere).
    setTimeout(
      () => {
        log.error("shutdown overran its grace period: exiting");
        process.exit(1);
      },
      (config.SHUTDOWN_GRACE_SECONDS + 30) * 1000,
    ).unref();
    service
      .stop()
      .then(stopTracing)
      .finally(() => process.exit(0));
  });
}
