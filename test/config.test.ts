// test lane: fast
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { loadConfig } from "../core/kernel/config.js";

test("defaults give the embedded setup", () => {
  const config = loadConfig({});
  assert.equal(config.DATABASE_URL, undefined);
  assert.equal(config.TEMPORAL_ADDRESS, undefined);
  assert.equal(config.KAFKA_BROKERS, undefined);
  assert.equal(config.PORT, 8080);
  assert.equal(config.MAX_SERVERS_PER_USER, 100);
  assert.match(config.AXION_DATA_DIR, /\/data$/);
  assert.equal(config.METRICS_PUBLIC, false, "/metrics answers this machine only");
  assert.equal(config.OTEL_TRACES_SAMPLE_RATIO, 1);
  assert.equal(loadConfig({ OTEL_TRACES_SAMPLE_RATIO: "" }).OTEL_TRACES_SAMPLE_RATIO, 1, "empty is unset, not 0");
});

test("values are parsed", () => {
  const config = loadConfig({
    DATABASE_URL: "postgres://u:p@db:5432/axion",
    TEMPORAL_ADDRESS: "temporal:7233",
    KAFKA_BROKERS: "k1:9092, k2:9092",
    MAX_SERVERS_PER_USER: "7",
    PORT: "9000",
    ORCHESTRATOR_SSH_PUBLIC_KEY: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx axion@orchestrator",
  });
  assert.deepEqual(config.KAFKA_BROKERS, ["k1:9092", "k2:9092"]);
  assert.equal(config.MAX_SERVERS_PER_USER, 7);
  assert.equal(config.PORT, 9000);
});

for (const [name, value] of [
  ["PORT", "eighty"],
  ["PORT", "70000"],
  ["MAX_SERVERS_PER_USER", "0"],
  ["MAX_SERVERS_PER_USER", "1.5"],
  ["DATABASE_URL", "mysql://x"],
  ["TEMPORAL_ADDRESS", "no-port"],
  ["KAFKA_BROKERS", "a:1,b"],
  ["ORCHESTRATOR_SSH_PUBLIC_KEY", "not a key"],
  ["AXION_ADMIN_TOKEN", "short"],
  ["OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"],
  ["OTEL_SERVICE_NAME", "has spaces"],
  ["OTEL_TRACES_SAMPLE_RATIO", "2"],
  ["OTEL_TRACES_SAMPLE_RATIO", "half"],
  ["METRICS_PUBLIC", "yes"],
] as const) {
  test(`a malformed ${name} (${value}) is refused with a line naming it`, () => {
    assert.throws(
      () => loadConfig({ [name]: value }),
      (error: Error) => error.message.startsWith(`invalid configuration: ${name} `) && !error.message.includes("\n"),
    );
  });
}

test("the service stops at start with one clear line", () => {
  const result = spawnSync(process.execPath, ["--import", "tsx", "app/main.ts"], {
    env: { ...process.env, PORT: "not-a-port" },
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(result.status, 2);
  assert.equal(result.stderr.trim(), "invalid configuration: PORT must be a port number");
});

test("REDIS_URL without REDIS_QUEUE_OWNER is refused with a line naming the owner variable", () => {
  assert.throws(
    () => loadConfig({ REDIS_URL: "redis://127.0.0.1:6379" }),
    (error: Error) => error.message === "invalid configuration: REDIS_QUEUE_OWNER is required when REDIS_URL is set",
  );
  assert.equal(loadConfig({ REDIS_URL: "redis://127.0.0.1:6379", REDIS_QUEUE_OWNER: "seed" }).REDIS_QUEUE_OWNER, "seed");
  assert.throws(
    () => loadConfig({ REDIS_QUEUE_OWNER: "Not An Owner" }),
    (error: Error) => error.message.startsWith("invalid configuration: REDIS_QUEUE_OWNER "),
  );
});

test("AGENT_INSTANCE_DEAD_AFTER: 5 minutes or two heartbeat timeouts unless set; never below two timeouts", () => {
  assert.equal(loadConfig({}).AGENT_INSTANCE_DEAD_AFTER, 300);
  assert.equal(loadConfig({ AGENT_HEARTBEAT_TIMEOUT: "600" }).AGENT_INSTANCE_DEAD_AFTER, 1200);
  assert.equal(loadConfig({ AGENT_INSTANCE_DEAD_AFTER: "90" }).AGENT_INSTANCE_DEAD_AFTER, 90);
  for (const [value, message] of [
    ["79", "must be at least twice AGENT_HEARTBEAT_TIMEOUT (80)"],
    ["5", "must be at least 10"],
    ["1e3", "must be whole seconds"],
    ["soon", "must be whole seconds"],
    ["90000", "must be at most 86400"],
  ]) {
    assert.throws(
      () => loadConfig({ AGENT_INSTANCE_DEAD_AFTER: value }),
      (error: Error) => error.message === `invalid configuration: AGENT_INSTANCE_DEAD_AFTER ${message}`,
      value,
    );
  }
});
