import type { ConfigVariable } from "./config.js";

/**
 * What each variable of `core/kernel/config.ts` means, for docs/configuration.md (`npm run docs:config`
 * writes it; a test checks it is current). A variable without an entry here is a compile error.
 * `unset` says what an unset optional variable means; defaults come from the schema itself.
 */
export const configReference: Record<ConfigVariable, { meaning: string; unset?: string }> = {
  DATABASE_URL: { meaning: "PostgreSQL URL (`postgres://…`)", unset: "embedded PGlite in `$AXION_DATA_DIR/pglite`" },
  AXION_DATA_DIR: { meaning: "data folder for the embedded defaults" },
  TEMPORAL_ADDRESS: {
    meaning: "Temporal frontend `host:port`; the custom search attributes are registered on it at start",
    unset: "start the dev server from `temporal-dev.yml`",
  },
  TEMPORAL_NAMESPACE: { meaning: "Temporal namespace" },
  TEMPORAL_TASK_QUEUE: { meaning: "task queue of the worker" },
  KAFKA_BROKERS: { meaning: "comma-separated `host:port` list", unset: "no Kafka" },
  REDIS_URL: { meaning: "seed-compatibility queue (`provisioner:queue`)" },
  REDIS_QUEUE_OWNER: { meaning: "name of the owner whose servers queue messages may name", unset: "required with `REDIS_URL`" },
  REDIS_QUEUE_DEDUPE_HOURS: { meaning: "how long a finished queue message's result answers copies of it (1-8760)" },
  MAX_SERVERS_PER_USER: { meaning: "servers per owner; enforced in a transaction that locks the owner row" },
  CREDENTIALS_KEY: {
    meaning: "32-byte AES-256-GCM master key, base64 or hex. A comma-separated list rotates: the first encrypts, all decrypt",
    unset: "a key generated once into `$AXION_DATA_DIR/credentials.key` (mode 0600, with a warning)",
  },
  ORCHESTRATOR_SSH_PUBLIC_KEY: { meaning: "the orchestrator's OpenSSH public key, installed by the deploy-key workflow" },
  PORT: { meaning: "API port (Connect, gRPC, gRPC-Web, `/healthz`, `/readyz`)" },
  AXION_ADMIN_TOKEN: { meaning: "bearer token of the `admin` owner (at least 16 characters); a changed value revokes the previous one" },
  AXION_ADMIN_USER: { meaning: "the unprivileged admin user the bootstrap creates on every server" },
  SSH_CONNECT_TIMEOUT_MS: { meaning: "deadline of one SSH connection: TCP connect, handshake and authentication" },
  SSH_KEY_PARSE_TIMEOUT_MS: {
    meaning: 'how long parsing/decrypting one private key may take before it is refused ("took too long to parse")',
  },
  SSH_KEY_PARSE_THREADS: { meaning: "worker threads that parse private keys (1-16), per process" },
  SERVER_ADDRESS_ALLOW: {
    meaning: "comma-separated CIDR list; when set, only server addresses inside it are allowed (see [network policy](provisioning.md))",
    unset: "everything the built-in classes allow",
  },
  SERVER_ADDRESS_DENY: { meaning: "comma-separated CIDR list of server addresses always refused; deny wins over allow" },
  DNS_SERVERS: {
    meaning:
      "DNS servers for names resolved on an owner's behalf (server hosts, webhook URLs): comma-separated `address`, `address:port` or `[IPv6]:port`; `/etc/hosts` is read first",
    unset: "those of `/etc/resolv.conf`",
  },
  DNS_TIMEOUT_MS: { meaning: "a lookup, queueing included, is answered or fails within this" },
  DNS_LOOKUPS_IN_FLIGHT: { meaning: "lookups running at once in all (an organization with none running may always start one)" },
  DNS_LOOKUPS_PER_OWNER: { meaning: "lookups running at once per organization" },
  TIME4VPS_API_URL: { meaning: "Time4VPS User API root for every account (accounts carry credentials only, never an address)" },
  TIME4VPS_USERNAME: {
    meaning: "the admin owner's Time4VPS account `time4vps-env`, created or updated at start when the `admin` owner exists",
  },
  TIME4VPS_PASSWORD: {
    meaning: "the admin owner's Time4VPS account `time4vps-env`, created or updated at start when the `admin` owner exists",
  },
  FLEET_CHECK_CRON: { meaning: "cron of the `fleet-check` schedule (5 fields or `@hourly`-style)" },
  AGENT_API_URL: {
    meaning: "http(s) URL of the API the agents call (must be reachable from the servers)",
    unset: "the agent step is skipped",
  },
  AGENT_BINARY_DIR: { meaning: "where the agent binaries the bootstrap installs are (`scripts/build-agent.sh`)" },
  AGENT_HEARTBEAT_INTERVAL: { meaning: "seconds between an agent's heartbeats" },
  AGENT_HEARTBEAT_TIMEOUT: { meaning: "seconds of silence after which a server goes OFFLINE" },
  AGENT_INSTANCE_DEAD_AFTER: {
    meaning:
      "seconds an API instance that stopped reporting ingestion progress holds the liveness sweep back before it counts as dead (at least 2 × `AGENT_HEARTBEAT_TIMEOUT`)",
    unset: "300, or 2 × `AGENT_HEARTBEAT_TIMEOUT` if longer",
  },
  LIVENESS_SWEEP_INTERVAL: { meaning: "seconds between liveness sweeps" },
  RECOVER_OFFLINE_SERVERS: { meaning: "`true`: start a recovery for each server that goes OFFLINE" },
  METRICS_RETENTION_HOURS: { meaning: "raw heartbeat samples are kept this long (2-8760; the hour rollup reads them)" },
  METRICS_MINUTE_RETENTION_DAYS: { meaning: "one-minute rollups are kept this long (1-3650)" },
  METRICS_HOUR_RETENTION_DAYS: { meaning: "one-hour rollups are kept this long (1-36500)" },
  METRICS_ROLLUP_INTERVAL_SECONDS: { meaning: "how often the `metric-rollups` schedule rolls up and prunes (10-3600)" },
  MAX_REQUEST_BYTES: { meaning: "largest request message after decompression (agents' `Register`/`Heartbeat`: 64 KiB)" },
  HTTP_FIRST_BYTE_TIMEOUT_MS: { meaning: "a connection that has not sent its first bytes (HTTP/2: the 24-byte preface) is closed" },
  HTTP_HEADERS_TIMEOUT_MS: { meaning: "HTTP/1.1: request headers not complete in time are answered 408" },
  HTTP_REQUEST_TIMEOUT_MS: {
    meaning: "a request not fully received in time: HTTP/1.1 408, HTTP/2 stream reset (responses may last longer)",
  },
  HTTP_IDLE_TIMEOUT_MS: { meaning: "HTTP/1.1 keep-alive between requests; an HTTP/2 session with no open stream is closed (GOAWAY)" },
  WATCH_STREAMS_PER_OWNER: { meaning: "open `WatchOperation` streams per owner" },
  CONNECTION_TEST_BURST: {
    meaning:
      "connection probes per owner at once (token bucket): `TestServerConnection`, `AcceptHostKey`, and one per server of a test-connection rollout",
  },
  CONNECTION_TESTS_PER_MINUTE: { meaning: "refill of that bucket" },
  PROVISIONING_BURST: {
    meaning:
      "provisioning starts per owner at once (`ConfigureServer`, `SetupDeployKey`, `RecoverServer`, `ReinstallServer`, `InstallAgent`)",
  },
  PROVISIONING_STARTS_PER_MINUTE: { meaning: "refill of that bucket" },
  AGENT_RATE_LIMIT: {
    meaning: "Register/Heartbeat calls per agent per `AGENT_HEARTBEAT_INTERVAL` (bursts of twice that); excess: `ResourceExhausted`",
  },
  OUTBOX_RETENTION_HOURS: { meaning: "published outbox events older than this are deleted (once the alert evaluation has read them)" },
  AUDIT_RETENTION_DAYS: {
    meaning:
      "audit entries older than this are deleted, oldest first; each chain keeps the last removed entry's sequence and hash as its checkpoint, so `axion audit verify` still checks the rest",
  },
  INGESTION_PROGRESS_RETENTION_HOURS: { meaning: "progress rows of API instances silent this long are deleted" },
  OFFLINE_RECOVERY_CONCURRENCY: { meaning: "with `RECOVER_OFFLINE_SERVERS=true`: recoveries running at once (1-1000)" },
  RECONCILE_INTERVAL_SECONDS: {
    meaning: "how often the `operations-reconciler` schedule settles operations and rollouts against Temporal (5–86400)",
  },
  LOG_LEVEL: { meaning: "`debug`, `info`, `warn`, `error`" },
  METRICS_TOKEN: {
    meaning:
      "when set (at least 16 characters), `GET /metrics` answers only `Authorization: Bearer <token>` (compared in constant time), from everywhere",
    unset:
      "`/metrics` answers only a Prometheus on the same machine (a loopback peer without `Forwarded`, `X-Forwarded-For` or `X-Real-IP`); others get 403",
  },
  WORKER_METRICS_PORT: {
    meaning:
      "a process running the worker (`main.ts worker` or `all`) also serves `GET /metrics` on this port (same token) and `/readyz` (no token)",
    unset: "off",
  },
  SHUTDOWN_GRACE_SECONDS: {
    meaning:
      "on SIGTERM or SIGINT, how long in-flight API calls and running activities may take to finish (0-3600); streams end at once with `Unavailable`, activities still running then are cancelled and retried by another worker",
  },
  TEMPORAL_METRICS_ADDRESS: {
    meaning: "`host:port` where the Temporal SDK's own metrics (`temporal_*`) are served for Prometheus by a worker process",
    unset: "off",
  },
  ALERT_GRACE_SECONDS: {
    meaning: "how long a server status (OFFLINE, UNREACHABLE, HOSTKEY_MISMATCH) must hold before it alerts (0-86400)",
  },
  ALERT_EVALUATION_INTERVAL_SECONDS: { meaning: "how often the disk and memory rules are evaluated (0.2-3600)" },
  ALERT_DISK_PERCENT: { meaning: "default thresholds of the disk and memory rules (an owner's rules override them)" },
  ALERT_MEMORY_PERCENT: { meaning: "default thresholds of the disk and memory rules (an owner's rules override them)" },
  ALERT_SUSTAINED_SECONDS: { meaning: "default window the disk and memory rules judge from the raw samples" },
  ALERT_FLAP_CHANGES: {
    meaning:
      "default flapping rule: a server whose liveness (OFFLINE/UNREACHABLE or not) changes more than this many times within `ALERT_FLAP_WINDOW_SECONDS` fires one `server_flapping` alert (1-100; an owner's rules override it)",
  },
  ALERT_FLAP_WINDOW_SECONDS: { meaning: "default window in which the flapping rule counts a server's liveness changes (1-86400)" },
  ALERT_FLAP_SETTLE_SECONDS: {
    meaning: "default time without a liveness change after which a firing `server_flapping` alert is resolved (1-86400)",
    unset: "`ALERT_FLAP_WINDOW_SECONDS`",
  },
  NOTIFICATION_CHANNELS_PER_OWNER: { meaning: "notification channels per owner" },
  NOTIFICATION_TIMEOUT_MS: { meaning: "deadline of one delivery attempt (resolution, connection, answer)" },
  NOTIFICATION_RETRY_INITIAL_MS: { meaning: "backoff between delivery attempts: doubling from the first up to the second" },
  NOTIFICATION_RETRY_MAX_MS: { meaning: "backoff between delivery attempts: doubling from the first up to the second" },
  NOTIFICATION_MAX_ATTEMPTS: { meaning: "a delivery not accepted after this many attempts is marked failed" },
  NOTIFICATION_TEST_BURST: {
    meaning: "`TestNotificationChannel` calls per owner at once (token bucket; each one is a request to the owner's URL)",
  },
  NOTIFICATION_TESTS_PER_MINUTE: { meaning: "refill of that bucket" },
  OIDC_ISSUER_URL: {
    meaning:
      "OpenID Connect issuer of single sign-on (discovery at `<issuer>/.well-known/openid-configuration`); https, or http on a loopback address only",
    unset: "no single sign-on",
  },
  OIDC_CLIENT_ID: {
    meaning: "the OAuth 2.0 client id registered for Axion at the identity provider",
    unset: "required with `OIDC_ISSUER_URL`",
  },
  OIDC_CLIENT_SECRET: {
    meaning: "the client's secret, for a confidential client (sent by HTTP Basic); never logged",
    unset: "a public client: PKCE alone (as `axion login --sso` on a person's machine)",
  },
  OIDC_GROUPS_CLAIM: { meaning: "the ID token claim that lists the person's groups (an array of names)" },
  OTEL_EXPORTER_OTLP_ENDPOINT: {
    meaning: "OTLP/HTTP collector root; spans go to `<endpoint>/v1/traces` (see [traces](observability.md#traces))",
    unset: "no tracing",
  },
  OTEL_SERVICE_NAME: { meaning: "`service.name` of the spans" },
  SSH_KEY_PARSE_PER_OWNER: {
    meaning:
      "private keys one organization may have queued or being parsed at once (beyond: `ResourceExhausted`; workflow steps wait their turn instead); the threads serve organizations in turn",
  },
  SERVER_WRITE_BURST: { meaning: "`CreateServer`/`UpdateServer` calls per owner at once (token bucket; each may parse a key)" },
  SERVER_WRITES_PER_MINUTE: { meaning: "refill of that bucket" },
  PLAN_CHECK_BURST: { meaning: "servers planned per owner at once (`PlanServer` costs 1, `PlanRollout` one per server)" },
  PLAN_CHECKS_PER_MINUTE: { meaning: "refill of that bucket" },
  PROVIDER_CHECK_BURST: { meaning: "`ReinstallServer` checks that ask the provider, per owner at once" },
  PROVIDER_CHECKS_PER_MINUTE: { meaning: "refill of that bucket" },
  ROLLOUT_QUERIES_PER_OWNER: {
    meaning:
      "Temporal progress queries in flight per owner for rollout reads (concurrent reads of one rollout share one round and its answer for 1 s)",
  },
  METRICS_PUBLIC: {
    meaning: "`true`: `/metrics` open to anyone who reaches the port (the old behaviour; refused together with `METRICS_TOKEN`)",
  },
  OTEL_TRACES_SAMPLE_RATIO: {
    meaning: "share of traces recorded (0-1), decided by trace id; a caller's `traceparent` flag neither forces nor suppresses recording",
  },
  WORKER_SSH_SESSIONS_PER_OWNER: {
    meaning:
      "SSH sessions one organization's steps use at once on each worker; as many more may wait up to 20 s, beyond that a step is postponed by its workflow (1-30 s), never failed: an organization holds at most twice this many of a worker's activity slots",
  },
  NOTIFICATION_DELIVERIES_PER_OWNER: {
    meaning: "alert deliveries in flight per organization per worker process (claimed round-robin across organizations)",
  },
  NOTIFICATION_DELIVERIES_IN_FLIGHT: { meaning: "alert deliveries in flight per worker process in all" },
};
