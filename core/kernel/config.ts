import { isIP } from "node:net";
import { resolve } from "node:path";
import { z } from "zod";
import { type Cidr, parseCidr } from "../security/network-policy.js";

const hostPort = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;

const optionalText = z
  .string()
  .transform((v) => v.trim())
  .transform((v) => (v === "" ? undefined : v))
  .optional();

/** A comma-separated list of CIDR ranges (a bare address is a single-address range); empty: none. */
const cidrList = z
  .string()
  .default("")
  .transform((v, ctx) => {
    const ranges: Cidr[] = [];
    for (const item of v.split(",").filter((i) => i.trim() !== "")) {
      const range = parseCidr(item);
      if (range) ranges.push(range);
      else
        ctx.addIssue({
          code: "custom",
          message: `must be a comma-separated list of CIDR ranges: "${item.trim().slice(0, 60)}" is not one`,
        });
    }
    return ranges;
  });

/** A comma-separated list of DNS servers: "address", "address:port" or "[IPv6]:port"; empty: /etc/resolv.conf's. */
const dnsServerList = z
  .string()
  .default("")
  .transform((v, ctx) => {
    const servers: string[] = [];
    for (const item of v
      .split(",")
      .map((i) => i.trim())
      .filter((i) => i !== "")) {
      const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(item);
      const v4WithPort = /^([\d.]+):(\d{1,5})$/.exec(item);
      const address = bracketed?.[1] ?? v4WithPort?.[1] ?? item;
      const port = Number(bracketed?.[2] ?? v4WithPort?.[2] ?? 53);
      if (isIP(address) === 0 || port < 1 || port > 65535) {
        ctx.addIssue({
          code: "custom",
          message: `must be a comma-separated list of DNS server addresses (address, address:port or [IPv6]:port): "${item.slice(0, 60)}" is not one`,
        });
      } else servers.push(item);
    }
    return servers;
  });

/** Every environment variable the service reads, with its rule and default. */
const schema = z.object({
  DATABASE_URL: optionalText.pipe(
    z
      .string()
      .regex(/^postgres(ql)?:\/\/.+/, "must be a postgres:// or postgresql:// URL")
      .optional(),
  ),
  AXION_DATA_DIR: z.string().default("./data"),
  TEMPORAL_ADDRESS: optionalText.pipe(z.string().regex(hostPort, "must be host:port").optional()),
  TEMPORAL_NAMESPACE: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/, "must be a Temporal namespace name")
    .default("axion"),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default("axion-provisioning"),
  KAFKA_BROKERS: optionalText.pipe(
    z
      .string()
      .transform((v) => v.split(",").map((b) => b.trim()))
      .pipe(z.array(z.string().regex(hostPort, "must be a comma-separated list of host:port")))
      .optional(),
  ),
  REDIS_URL: optionalText.pipe(
    z
      .string()
      .regex(/^rediss?:\/\/.+/, "must be a redis:// URL")
      .optional(),
  ),
  REDIS_QUEUE_OWNER: optionalText.pipe(
    z
      .string()
      .regex(/^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/, "must be an owner name")
      .optional(),
  ),
  REDIS_QUEUE_DEDUPE_HOURS: z.coerce.number({ error: "must be hours" }).int("must be hours").min(1).max(8760).default(24),
  MAX_SERVERS_PER_USER: z.coerce
    .number({ error: "must be a whole number" })
    .int("must be a whole number")
    .min(1, "must be at least 1")
    .default(100),
  CREDENTIALS_KEY: optionalText,
  ORCHESTRATOR_SSH_PUBLIC_KEY: optionalText.pipe(
    z
      .string()
      .regex(
        /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( [^\n]*)?$/,
        "must be one OpenSSH public key line",
      )
      .optional(),
  ),
  PORT: z.coerce
    .number({ error: "must be a port number" })
    .int("must be a port number")
    .min(0, "must be 0-65535")
    .max(65535, "must be 0-65535")
    .default(8080),
  AXION_ADMIN_TOKEN: optionalText.pipe(z.string().min(16, "must be at least 16 characters").optional()),
  AXION_ADMIN_USER: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a POSIX user name")
    .default("axion"),
  WORKER_SSH_SESSIONS_PER_OWNER: z.coerce
    .number({ error: "must be a whole number" })
    .int()
    .min(1, "must be 1-1000")
    .max(1000, "must be 1-1000")
    .default(8),
  SSH_CONNECT_TIMEOUT_MS: z.coerce.number({ error: "must be milliseconds" }).int().min(1000, "must be at least 1000").default(10_000),
  SSH_KEY_PARSE_TIMEOUT_MS: z.coerce.number({ error: "must be milliseconds" }).int().min(100, "must be at least 100").default(30_000),
  SSH_KEY_PARSE_THREADS: z.coerce
    .number({ error: "must be a whole number" })
    .int()
    .min(1, "must be 1-16")
    .max(16, "must be 1-16")
    .default(1),
  SSH_KEY_PARSE_PER_OWNER: z.coerce.number({ error: "must be a whole number" }).int().min(1, "must be at least 1").default(16),
  SERVER_ADDRESS_ALLOW: cidrList,
  SERVER_ADDRESS_DENY: cidrList,
  /** Names of servers and webhook URLs are resolved by these (core/security/name-resolution.ts); the hosts file first. */
  DNS_SERVERS: dnsServerList,
  DNS_TIMEOUT_MS: z.coerce
    .number({ error: "must be milliseconds" })
    .int()
    .min(100, "must be 100-60000")
    .max(60_000, "must be 100-60000")
    .default(5000),
  DNS_LOOKUPS_IN_FLIGHT: z.coerce
    .number({ error: "must be a whole number" })
    .int()
    .min(1, "must be 1-1024")
    .max(1024, "must be 1-1024")
    .default(64),
  DNS_LOOKUPS_PER_OWNER: z.coerce
    .number({ error: "must be a whole number" })
    .int()
    .min(1, "must be 1-1024")
    .max(1024, "must be 1-1024")
    .default(4),
  TIME4VPS_API_URL: z
    .string()
    .regex(/^https?:\/\/.+/, "must be an http(s) URL")
    .default("https://billing.time4vps.com/api/"),
  TIME4VPS_USERNAME: optionalText,
  TIME4VPS_PASSWORD: optionalText,
  FLEET_CHECK_CRON: z
    .string()
    .regex(/^(@\w+|(\S+\s+){4}\S+)$/, "must be a cron expression of 5 fields or @hourly-style")
    .default("*/15 * * * *"),
  AGENT_API_URL: optionalText.pipe(
    z
      .string()
      .regex(/^https?:\/\/[^\s"]+$/, "must be an http(s) URL the servers can reach")
      .optional(),
  ),
  AGENT_BINARY_DIR: z.string().default("agent/dist"),
  AGENT_HEARTBEAT_INTERVAL: z.coerce.number({ error: "must be seconds" }).int().min(1).max(3600).default(10),
  AGENT_HEARTBEAT_TIMEOUT: z.coerce.number({ error: "must be seconds" }).int().min(5).max(86400).default(40),
  // An API instance that stopped reporting ingestion progress (frozen, crashed, cut off) holds the liveness sweep back
  // this long, then counts as dead (core/agents/liveness.ts). At least two heartbeat timeouts (checked below); unset: 300 s
  // or two timeouts, whichever is longer.
  AGENT_INSTANCE_DEAD_AFTER: optionalText.pipe(
    z
      .string()
      .regex(/^\d{1,6}$/, "must be whole seconds")
      .transform(Number)
      .pipe(z.number().min(10, "must be at least 10").max(86400, "must be at most 86400"))
      .optional(),
  ),
  LIVENESS_SWEEP_INTERVAL: z.coerce.number({ error: "must be seconds" }).int().min(1).max(3600).default(5),
  RECOVER_OFFLINE_SERVERS: z.enum(["true", "false"], { error: "must be true or false" }).default("false"),
  // Raw heartbeat samples; at least 2 h: the hour rollup reads them (core/agents/metric-tiers.ts).
  METRICS_RETENTION_HOURS: z.coerce.number({ error: "must be hours" }).int().min(2, "must be at least 2").max(8760).default(6),
  METRICS_MINUTE_RETENTION_DAYS: z.coerce.number({ error: "must be days" }).int().min(1).max(3650).default(7),
  METRICS_HOUR_RETENTION_DAYS: z.coerce.number({ error: "must be days" }).int().min(1).max(36500).default(365),
  METRICS_ROLLUP_INTERVAL_SECONDS: z.coerce.number({ error: "must be seconds" }).int().min(10).max(3600).default(60),
  MAX_REQUEST_BYTES: z.coerce
    .number({ error: "must be bytes" })
    .int("must be bytes")
    .min(64 * 1024, "must be at least 65536")
    .max(64 * 1024 * 1024, "must be at most 67108864")
    .default(1024 * 1024),
  HTTP_FIRST_BYTE_TIMEOUT_MS: z.coerce.number({ error: "must be milliseconds" }).int().min(100, "must be at least 100").default(10_000),
  HTTP_HEADERS_TIMEOUT_MS: z.coerce.number({ error: "must be milliseconds" }).int().min(100, "must be at least 100").default(20_000),
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number({ error: "must be milliseconds" }).int().min(100, "must be at least 100").default(60_000),
  HTTP_IDLE_TIMEOUT_MS: z.coerce.number({ error: "must be milliseconds" }).int().min(100, "must be at least 100").default(65_000),
  WATCH_STREAMS_PER_OWNER: z.coerce.number({ error: "must be a whole number" }).int().min(1, "must be at least 1").default(20),
  CONNECTION_TEST_BURST: z.coerce.number({ error: "must be a whole number" }).int().min(1, "must be at least 1").default(100),
  CONNECTION_TESTS_PER_MINUTE: z.coerce.number({ error: "must be a number" }).positive("must be more than 0").default(10),
  PROVISIONING_BURST: z.coerce.number({ error: "must be a whole number" }).int().min(1, "must be at least 1").default(60),
  PROVISIONING_STARTS_PER_MINUTE: z.coerce.number({ error: "must be a number" }).positive("must be more than 0").default(30),
  SERVER_WRITE_BURST: z.coerce.number({ error: "must be a whole number" }).int().min(1, "must be at least 1").default(100),
  SERVER_WRITES_PER_MINUTE: z.coerce.number({ error: "must be a number" }).positive("must be more than 0").default(60),
  PLAN_CHECK_BURST: z.coerce.number({ error: "must be a whole number" }).int().min(1, "must be at least 1").default(200),
  PLAN_CHECKS_PER_MINUTE: z.coerce.number({ error: "must be a number" }).positive("must be more than 0").default(100),
  PROVIDER_CHECK_BURST: z.coerce.number({ error: "must be a whole number" }).int().min(1, "must be at least 1").default(5),
  PROVIDER_CHECKS_PER_MINUTE: z.coerce.number({ error: "must be a number" }).positive("must be more than 0").default(2),
  ROLLOUT_QUERIES_PER_OWNER: z.coerce.number({ error: "must be a whole number" }).int().min(1, "must be at least 1").default(40),
  AGENT_RATE_LIMIT: z.coerce.number({ error: "must be a whole number" }).int().min(1).max(1000).default(5),
  OUTBOX_RETENTION_HOURS: z.coerce.number({ error: "must be hours" }).int().min(1, "must be at least 1").default(168),
  AUDIT_RETENTION_DAYS: z.coerce.number({ error: "must be days" }).int().min(1, "must be at least 1").max(36500).default(400),
  INGESTION_PROGRESS_RETENTION_HOURS: z.coerce.number({ error: "must be hours" }).int().min(1, "must be at least 1").default(24),
  OFFLINE_RECOVERY_CONCURRENCY: z.coerce
    .number({ error: "must be a whole number" })
    .int("must be a whole number")
    .min(1, "must be at least 1")
    .max(1000, "must be at most 1000")
    .default(5),
  RECONCILE_INTERVAL_SECONDS: z.coerce.number({ error: "must be seconds" }).int().min(5, "must be at least 5").max(86400).default(60),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  METRICS_TOKEN: optionalText.pipe(z.string().min(16, "must be at least 16 characters").optional()),
  // Without METRICS_TOKEN, /metrics answers this machine only; "true" serves it to anyone (observability/metrics.ts).
  METRICS_PUBLIC: z
    .enum(["true", "false"], { error: "must be true or false" })
    .default("false")
    .transform((v) => v === "true"),
  WORKER_METRICS_PORT: optionalText.pipe(
    z
      .string()
      .regex(/^\d{1,5}$/, "must be a port number")
      .transform(Number)
      .pipe(z.number().min(1, "must be 1-65535").max(65535, "must be 1-65535"))
      .optional(),
  ),
  SHUTDOWN_GRACE_SECONDS: z.coerce
    .number({ error: "must be seconds" })
    .int("must be whole seconds")
    .min(0, "must be 0-3600")
    .max(3600, "must be 0-3600")
    .default(25),
  TEMPORAL_METRICS_ADDRESS: optionalText.pipe(z.string().regex(hostPort, "must be host:port").optional()),
  ALERT_GRACE_SECONDS: z.coerce.number({ error: "must be seconds" }).min(0, "must be 0-86400").max(86400, "must be 0-86400").default(60),
  ALERT_EVALUATION_INTERVAL_SECONDS: z.coerce
    .number({ error: "must be seconds" })
    .min(0.2, "must be 0.2-3600")
    .max(3600, "must be 0.2-3600")
    .default(15),
  ALERT_DISK_PERCENT: z.coerce.number({ error: "must be a percentage" }).gt(0, "must be 0-100").max(100, "must be 0-100").default(90),
  ALERT_MEMORY_PERCENT: z.coerce.number({ error: "must be a percentage" }).gt(0, "must be 0-100").max(100, "must be 0-100").default(95),
  ALERT_SUSTAINED_SECONDS: z.coerce
    .number({ error: "must be seconds" })
    .int()
    .min(1, "must be 1-86400")
    .max(86400, "must be 1-86400")
    .default(300),
  ALERT_FLAP_CHANGES: z.coerce
    .number({ error: "must be a whole number" })
    .int()
    .min(1, "must be 1-100")
    .max(100, "must be 1-100")
    .default(6),
  ALERT_FLAP_WINDOW_SECONDS: z.coerce
    .number({ error: "must be seconds" })
    .int()
    .min(1, "must be 1-86400")
    .max(86400, "must be 1-86400")
    .default(600),
  ALERT_FLAP_SETTLE_SECONDS: optionalText.pipe(
    z
      .string()
      .regex(/^\d{1,5}$/, "must be whole seconds")
      .transform(Number)
      .pipe(z.number().min(1, "must be 1-86400").max(86400, "must be 1-86400"))
      .optional(),
  ),
  NOTIFICATION_CHANNELS_PER_OWNER: z.coerce
    .number({ error: "must be a whole number" })
    .int()
    .min(1, "must be at least 1")
    .max(1000)
    .default(20),
  NOTIFICATION_TIMEOUT_MS: z.coerce
    .number({ error: "must be milliseconds" })
    .int()
    .min(100, "must be at least 100")
    .max(120_000)
    .default(10_000),
  NOTIFICATION_RETRY_INITIAL_MS: z.coerce.number({ error: "must be milliseconds" }).int().min(10, "must be at least 10").default(5_000),
  NOTIFICATION_RETRY_MAX_MS: z.coerce
    .number({ error: "must be milliseconds" })
    .int()
    .min(10, "must be at least 10")
    .default(15 * 60_000),
  NOTIFICATION_DELIVERIES_PER_OWNER: z.coerce
    .number({ error: "must be a whole number" })
    .int()
    .min(1, "must be 1-1000")
    .max(1000, "must be 1-1000")
    .default(4),
  NOTIFICATION_DELIVERIES_IN_FLIGHT: z.coerce
    .number({ error: "must be a whole number" })
    .int()
    .min(1, "must be 1-10000")
    .max(10_000, "must be 1-10000")
    .default(64),
  NOTIFICATION_MAX_ATTEMPTS: z.coerce.number({ error: "must be a whole number" }).int().min(1).max(1000).default(20),
  NOTIFICATION_TEST_BURST: z.coerce.number({ error: "must be a whole number" }).int().min(1, "must be at least 1").default(5),
  NOTIFICATION_TESTS_PER_MINUTE: z.coerce.number({ error: "must be a number" }).positive("must be more than 0").default(2),
  OIDC_ISSUER_URL: optionalText.pipe(
    z
      .string()
      .regex(/^https?:\/\/[^\s"?#]+$/, "must be the identity provider's http(s) issuer URL, without query or fragment")
      .optional(),
  ),
  OIDC_CLIENT_ID: optionalText.pipe(
    z
      .string()
      .regex(/^[\x21-\x7e]{1,255}$/, "must be 1-255 printable characters without spaces")
      .optional(),
  ),
  OIDC_CLIENT_SECRET: optionalText,
  OIDC_GROUPS_CLAIM: z
    .string()
    .regex(/^[A-Za-z0-9_.:/-]{1,128}$/, "must be a claim name (letters, digits, _ . : / -)")
    .default("groups"),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalText.pipe(
    z
      .string()
      .regex(/^https?:\/\/[^\s"]+$/, "must be an http(s) URL of an OTLP collector")
      .optional(),
  ),
  OTEL_TRACES_SAMPLE_RATIO: optionalText.pipe(
    z.coerce
      .number<string | undefined>({ error: "must be a number from 0 to 1" })
      .min(0, "must be a number from 0 to 1")
      .max(1, "must be a number from 0 to 1")
      .default(1),
  ),
  OTEL_SERVICE_NAME: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, "must be 1-64 letters, digits, dots, dashes or underscores")
    .default("axion-infra"),
});

/** Rules that involve more than one variable. */
const checkedSchema = schema.superRefine((config, ctx) => {
  if (config.REDIS_URL && !config.REDIS_QUEUE_OWNER)
    ctx.addIssue({ code: "custom", path: ["REDIS_QUEUE_OWNER"], message: "is required when REDIS_URL is set" });
  if (config.AGENT_INSTANCE_DEAD_AFTER !== undefined && config.AGENT_INSTANCE_DEAD_AFTER < 2 * config.AGENT_HEARTBEAT_TIMEOUT)
    ctx.addIssue({
      code: "custom",
      path: ["AGENT_INSTANCE_DEAD_AFTER"],
      message: `must be at least twice AGENT_HEARTBEAT_TIMEOUT (${2 * config.AGENT_HEARTBEAT_TIMEOUT})`,
    });
  if (config.OIDC_ISSUER_URL && !config.OIDC_CLIENT_ID)
    ctx.addIssue({ code: "custom", path: ["OIDC_CLIENT_ID"], message: "is required when OIDC_ISSUER_URL is set" });
  if (config.METRICS_PUBLIC && config.METRICS_TOKEN)
    ctx.addIssue({ code: "custom", path: ["METRICS_PUBLIC"], message: "must not be true when METRICS_TOKEN is set" });
});

export type Config = Omit<z.infer<typeof schema>, "AXION_DATA_DIR" | "AGENT_INSTANCE_DEAD_AFTER"> & {
  AXION_DATA_DIR: string;
  AGENT_INSTANCE_DEAD_AFTER: number;
};

/** Unset, an ingestion instance counts as dead after 5 minutes without a report, or two heartbeat timeouts when longer. */
export const defaultInstanceDeadAfter = (heartbeatTimeoutSeconds: number) => Math.max(300, 2 * heartbeatTimeoutSeconds);

export class ConfigError extends Error {}

/** Parses the environment; a missing or malformed value throws one line naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = checkedSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? "environment");
    throw new ConfigError(`invalid configuration: ${name} ${issue?.message ?? "is invalid"}`);
  }
  const { AGENT_INSTANCE_DEAD_AFTER, AGENT_HEARTBEAT_TIMEOUT } = parsed.data;
  return {
    ...parsed.data,
    AXION_DATA_DIR: resolve(parsed.data.AXION_DATA_DIR),
    AGENT_INSTANCE_DEAD_AFTER: AGENT_INSTANCE_DEAD_AFTER ?? defaultInstanceDeadAfter(AGENT_HEARTBEAT_TIMEOUT),
  };
}

/** Every variable the service reads, by name (docs/configuration.md is generated from these). */
export type ConfigVariable = keyof typeof schema.shape;
export const configSchemaShape = schema.shape;
