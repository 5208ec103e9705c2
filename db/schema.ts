import { sql } from "drizzle-orm";
import {
  type AnyPgColumn,
  bigint,
  boolean,
  customType,
  doublePrecision,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import {
  alertKinds,
  alertStates,
  auditActorKinds,
  auditOutcomes,
  authMethods,
  deliveryStatuses,
  notificationChannelKinds,
  operationKinds,
  operationStatuses,
  providerKinds,
  roles,
  rolloutKinds,
  rolloutServerStates,
  rolloutStatuses,
  serverStatuses,
  systemActors,
} from "../core/kernel/kinds.js";

/** The drizzle schema is the source of truth; migrations in db/migrations are generated from it. */

const createdAt = () => timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();
const updatedAt = () => timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow();

/**
 * A JSON document kept as its text: written and read whole, never looked into
 * by SQL, so the database does not parse it on every write (as jsonb would).
 */
const jsonText = customType<{ data: Record<string, unknown>; driverData: string }>({
  dataType: () => "text",
  toDriver: (value) => JSON.stringify(value),
  fromDriver: (value) => JSON.parse(value) as Record<string, unknown>,
});

export const owners = pgTable("owners", {
  id: uuid("id").primaryKey(),
  name: text("name").notNull().unique(),
  createdAt: createdAt(),
});

/** API bearer tokens; only a SHA-256 of the token is stored. */
export const apiTokens = pgTable(
  "api_tokens",
  {
    id: uuid("id").primaryKey(),
    ownerId: uuid("owner_id")
      .notNull()
      .references(() => owners.id, { onDelete: "cascade" }),
    tokenHash: text("token_hash").notNull().unique(),
    label: text("label").notNull().default(""),
    /** A non-secret start of the token ("axn_" and 8 characters), so an owner can tell its tokens apart. */
    tokenPrefix: text("token_prefix").notNull().default(""),
    createdAt: createdAt(),
    /** Written at most once a minute per token. */
    lastUsedAt: timestamp("last_used_at", { withTimezone: true, mode: "date" }),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }),
    revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
    /** The weakest role first (`roles`); tokens made before roles existed are admin. */
    role: text("role", { enum: roles }).notNull(),
    /** The clusters the token is limited to; null: every cluster of the owner. */
    clusterIds: uuid("cluster_ids").array(),
    /** The token that created this one (null for tokens made by the operator command or from AXION_ADMIN_TOKEN). */
    createdByTokenId: uuid("created_by_token_id").references((): AnyPgColumn => apiTokens.id, { onDelete: "set null" }),
  },
  (t) => [index("api_tokens_owner_id_idx").on(t.ownerId), index("api_tokens_created_by_token_id_idx").on(t.createdByTokenId)],
);

export const clusters = pgTable(
  "clusters",
  {
    id: uuid("id").primaryKey(),
    ownerId: uuid("owner_id")
      .notNull()
      .references(() => owners.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    labels: jsonb("labels").$type<Record<string, string>>().notNull().default({}),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("clusters_owner_id_name_key").on(t.ownerId, t.name)],
);

/** An owner's account at a VPS provider; its API credentials are an AES-256-GCM envelope bound to the account id. */
export const providerAccounts = pgTable(
  "provider_accounts",
  {
    id: uuid("id").primaryKey(),
    ownerId: uuid("owner_id")
      .notNull()
      .references(() => owners.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    kind: text("kind", { enum: providerKinds }).notNull(),
    keyId: text("key_id").notNull(),
    envelope: text("envelope").notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("provider_accounts_owner_id_name_key").on(t.ownerId, t.name),
    // Target of servers' (provider_account_id, owner_id) foreign key: a server can only name its own owner's account.
    unique("provider_accounts_id_owner_id_key").on(t.id, t.ownerId),
  ],
);

export const servers = pgTable(
  "servers",
  {
    id: uuid("id").primaryKey(),
    ownerId: uuid("owner_id")
      .notNull()
      .references(() => owners.id, { onDelete: "cascade" }),
    clusterId: uuid("cluster_id")
      .notNull()
      .references(() => clusters.id, { onDelete: "restrict" }),
    name: text("name").notNull(),
    host: text("host").notNull(),
    sshPort: integer("ssh_port").notNull().default(22),
    sshUser: text("ssh_user").notNull().default("root"),
    authMethod: text("auth_method", { enum: authMethods }).notNull(),
    labels: jsonb("labels").$type<Record<string, string>>().notNull().default({}),
    status: text("status", { enum: serverStatuses }).notNull().default("PENDING"),
    statusReason: text("status_reason").notNull().default(""),
    statusChangedAt: timestamp("status_changed_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    hostKeyFingerprint: text("host_key_fingerprint"),
    /** Whether server_credentials holds a become (sudo) password; the password itself never leaves that table's envelope. */
    becomePasswordSet: boolean("become_password_set").notNull().default(false),
    /** VPS provider kind that can rebuild this server ("time4vps", the account's kind), the owner's account there, and its id there. */
    provider: text("provider"),
    providerAccountId: uuid("provider_account_id"),
    providerServerId: text("provider_server_id"),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("servers_owner_id_name_key").on(t.ownerId, t.name),
    uniqueIndex("servers_owner_id_host_port_key").on(t.ownerId, t.host, t.sshPort),
    index("servers_cluster_id_idx").on(t.clusterId),
    index("servers_status_idx").on(t.status),
    // One server per VPS of an account: nobody else's row can point a rebuild at it.
    uniqueIndex("servers_provider_account_id_server_id_key").on(t.providerAccountId, t.providerServerId),
    foreignKey({
      name: "servers_provider_account_owner_fk",
      columns: [t.providerAccountId, t.ownerId],
      foreignColumns: [providerAccounts.id, providerAccounts.ownerId],
    }),
  ],
);

/**
 * One row per server: the SSH credential as an AES-256-GCM envelope (core/security/credentials-cipher.ts),
 * and the become (sudo) password, when set, as another envelope of the same key (associated data: "<server id>/become").
 */
export const serverCredentials = pgTable("server_credentials", {
  serverId: uuid("server_id")
    .primaryKey()
    .references(() => servers.id, { onDelete: "cascade" }),
  keyId: text("key_id").notNull(),
  envelope: text("envelope").notNull(),
  becomeEnvelope: text("become_envelope"),
  updatedAt: updatedAt(),
});

/** One row per workflow run started for a server. */
export const operations = pgTable(
  "operations",
  {
    id: uuid("id").primaryKey(),
    ownerId: uuid("owner_id")
      .notNull()
      .references(() => owners.id, { onDelete: "cascade" }),
    serverId: uuid("server_id").references(() => servers.id, { onDelete: "set null" }),
    kind: text("kind", { enum: operationKinds }).notNull(),
    workflowId: text("workflow_id").notNull(),
    runId: text("run_id"),
    status: text("status", { enum: operationStatuses }).notNull().default("RUNNING"),
    error: text("error"),
    /** What the workflow reported when it ended: steps with durations and outcomes. */
    result: jsonb("result").$type<Record<string, unknown>>(),
    /** The rollout that started this operation (core/rollouts/rollouts.ts), if any. */
    rolloutId: uuid("rollout_id").references(() => rollouts.id, { onDelete: "set null" }),
    startedAt: timestamp("started_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    finishedAt: timestamp("finished_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    index("operations_server_id_idx").on(t.serverId, t.startedAt),
    index("operations_owner_id_idx").on(t.ownerId),
    index("operations_rollout_id_idx").on(t.rolloutId),
    uniqueIndex("operations_workflow_run_key").on(t.workflowId, t.runId),
    // One provisioning operation per server at a time (connection tests are read-only and exempt).
    uniqueIndex("operations_one_running_per_server_key")
      .on(t.serverId)
      .where(sql`${t.status} = 'RUNNING' and ${t.kind} <> 'test_connection'`),
  ],
);

/** One row per rollout: an operation kind run over many servers in batches (workflow `rollout/<id>`). */
export const rollouts = pgTable(
  "rollouts",
  {
    id: uuid("id").primaryKey(),
    ownerId: uuid("owner_id")
      .notNull()
      .references(() => owners.id, { onDelete: "cascade" }),
    kind: text("kind", { enum: rolloutKinds }).notNull(),
    status: text("status", { enum: rolloutStatuses }).notNull().default("RUNNING"),
    /** As requested: cluster id, selector, explicit server ids. */
    target: jsonb("target").$type<Record<string, unknown>>().notNull(),
    /** Normalised (core/rollouts/rollout-strategy.ts). */
    strategy: jsonb("strategy").$type<Record<string, unknown>>().notNull(),
    options: jsonb("options").$type<Record<string, unknown>>().notNull().default({}),
    workflowId: text("workflow_id").notNull(),
    total: integer("total").notNull(),
    batchCount: integer("batch_count").notNull(),
    currentBatch: integer("current_batch").notNull().default(0),
    reason: text("reason").notNull().default(""),
    startedAt: timestamp("started_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    finishedAt: timestamp("finished_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [index("rollouts_owner_id_idx").on(t.ownerId)],
);

/** Each target of a rollout, in rollout order, with its batch and what happened to it. */
export const rolloutServers = pgTable(
  "rollout_servers",
  {
    rolloutId: uuid("rollout_id")
      .notNull()
      .references(() => rollouts.id, { onDelete: "cascade" }),
    position: integer("position").notNull(),
    /** Null once the server is deleted; its name stays. */
    serverId: uuid("server_id").references(() => servers.id, { onDelete: "set null" }),
    serverName: text("server_name").notNull(),
    batch: integer("batch").notNull(),
    state: text("state", { enum: rolloutServerStates }).notNull().default("PENDING"),
    /** Operations are removed only with their owner (then the rollout goes too); set null keeps the row if one ever is. */
    operationId: uuid("operation_id").references(() => operations.id, { onDelete: "set null" }),
    reason: text("reason").notNull().default(""),
  },
  (t) => [
    primaryKey({ columns: [t.rolloutId, t.position] }),
    index("rollout_servers_rollout_id_batch_idx").on(t.rolloutId, t.batch),
    index("rollout_servers_server_id_idx").on(t.serverId),
    index("rollout_servers_operation_id_idx").on(t.operationId),
  ],
);

/** Transactional outbox: written with the state change, relayed to Kafka by the worker. */
export const outboxEvents = pgTable(
  "outbox_events",
  {
    id: uuid("id").primaryKey(),
    topic: text("topic").notNull(),
    /** Kafka message key; events with one key (a server id) keep their order. */
    key: text("key").notNull(),
    type: text("type").notNull(),
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull(),
    createdAt: createdAt(),
    publishedAt: timestamp("published_at", { withTimezone: true, mode: "date" }),
    /** When the alert evaluation read the event (core/alerts/alert-evaluation.ts); retention keeps unread events. */
    alertsCheckedAt: timestamp("alerts_checked_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    index("outbox_events_unpublished_idx").on(t.createdAt).where(sql`${t.publishedAt} is null`),
    index("outbox_events_alerts_unchecked_idx").on(t.createdAt).where(sql`${t.alertsCheckedAt} is null`),
    // Retention prunes published events by age (core/agents/retention.ts).
    index("outbox_events_published_idx").on(t.publishedAt).where(sql`${t.publishedAt} is not null`),
  ],
);

/** The axion-agent of a server: its token (hash only), what it reported at registration, its last heartbeat. */
export const agents = pgTable(
  "agents",
  {
    serverId: uuid("server_id")
      .primaryKey()
      .references(() => servers.id, { onDelete: "cascade" }),
    /** SHA-256 of the per-server token; a promoted pending token replaces it, so the old token stops working. */
    tokenHash: text("token_hash").notNull(),
    tokenIssuedAt: timestamp("token_issued_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    /** Kafka heartbeat signing key of the current token, encrypted with the credentials cipher (associated data: server id). */
    kafkaKey: text("kafka_key"),
    /** A token issued by a reinstall, accepted next to the current one until the new agent first uses it (then promoted). */
    pendingTokenHash: text("pending_token_hash"),
    pendingTokenIssuedAt: timestamp("pending_token_issued_at", { withTimezone: true, mode: "date" }),
    pendingKafkaKey: text("pending_kafka_key"),
    /** Highest Kafka heartbeat sequence accepted: a message with a sequence at or below it is a replay. */
    kafkaSequence: bigint("kafka_sequence", { mode: "bigint" }).notNull().default(sql`0`),
    info: jsonb("info").$type<Record<string, unknown>>(),
    registeredAt: timestamp("registered_at", { withTimezone: true, mode: "date" }),
    lastHeartbeatAt: timestamp("last_heartbeat_at", { withTimezone: true, mode: "date" }),
    /** The newest heartbeat's Metrics (proto JSON), as the ingestor wrote it: every heartbeat rewrites it. */
    latestMetrics: jsonText("latest_metrics"),
  },
  // No index on last_heartbeat_at: every heartbeat sets it, and only without an index on it is that update
  // HOT (no index entry written per heartbeat). The liveness sweep's search for silent servers scans instead.
  // HOT also needs room on the row's page: migration 0006 sets fillfactor 70 (drizzle has no table storage
  // parameters); at 100 nearly every heartbeat moved its row to another page and added a primary key entry.
);

/**
 * Raw heartbeat samples, kept a short window (core/agents/metric-tiers.ts). Lean on
 * purpose, since every heartbeat writes one row: typed columns, mounts as one
 * compact JSON text (`[["/","used","total"],...]`), one btree for a server's range
 * and a BRIN on the time for rollups and pruning. No foreign key: a row of a
 * deleted server is never read (rollups and reads go through servers) and is
 * pruned with its window.
 */
export const metricSamplesRaw = pgTable(
  "metric_samples_raw",
  {
    serverId: uuid("server_id").notNull(),
    sampledAt: timestamp("sampled_at", { withTimezone: true, mode: "date" }).notNull(),
    cpuPercent: doublePrecision("cpu_percent").notNull(),
    memoryUsedBytes: bigint("memory_used_bytes", { mode: "bigint" }).notNull(),
    memoryTotalBytes: bigint("memory_total_bytes", { mode: "bigint" }).notNull(),
    load1: doublePrecision("load1").notNull(),
    load5: doublePrecision("load5").notNull(),
    load15: doublePrecision("load15").notNull(),
    uptimeSeconds: bigint("uptime_seconds", { mode: "bigint" }).notNull(),
    disks: text("disks").notNull(),
  },
  (t) => [
    index("metric_samples_raw_server_id_sampled_at_idx").on(t.serverId, t.sampledAt),
    index("metric_samples_raw_sampled_at_brin").using("brin", t.sampledAt),
  ],
);

/** One-minute and one-hour rollups of the raw samples: Metrics-shaped JSON (proto JSON names) for the average, minimum and maximum. */
export const metricRollups = pgTable(
  "metric_rollups",
  {
    serverId: uuid("server_id")
      .notNull()
      .references(() => servers.id, { onDelete: "cascade" }),
    resolutionSeconds: integer("resolution_seconds").notNull(),
    bucket: timestamp("bucket", { withTimezone: true, mode: "date" }).notNull(),
    samples: integer("samples").notNull(),
    avg: jsonb("avg").$type<Record<string, unknown>>().notNull(),
    min: jsonb("min").$type<Record<string, unknown>>().notNull(),
    max: jsonb("max").$type<Record<string, unknown>>().notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.serverId, t.resolutionSeconds, t.bucket] }),
    // How far each tier is rolled up (max bucket) and its pruning.
    index("metric_rollups_resolution_bucket_idx").on(t.resolutionSeconds, t.bucket),
  ],
);

/**
 * How far each API instance's heartbeat ingestion has caught up: every heartbeat
 * received before `caught_up_to` is in the database. The liveness sweep never
 * looks past the slowest live instance, so a stalled database or a backlog does
 * not turn healthy servers OFFLINE.
 */
export const ingestionProgress = pgTable("ingestion_progress", {
  instanceId: text("instance_id").primaryKey(),
  caughtUpTo: timestamp("caught_up_to", { withTimezone: true, mode: "date" }).notNull(),
  updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  /**
   * Since when this instance has reported progress without a stall (set when the row is first written;
   * the liveness sweep clears it while the instance is stalled and sets it again when it reports again).
   * Liveness counts silence only from the moment ingestion has been running (see core/agents/liveness.ts).
   */
  runningSince: timestamp("running_since", { withTimezone: true, mode: "date" }).defaultNow(),
});

/** An owner's alert receivers. URL and signing secret are one credentials-cipher envelope (associated data: the channel id). */
export const notificationChannels = pgTable(
  "notification_channels",
  {
    id: uuid("id").primaryKey(),
    ownerId: uuid("owner_id")
      .notNull()
      .references(() => owners.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    kind: text("kind", { enum: notificationChannelKinds }).notNull(),
    /** scheme://host:port of the URL, shown in responses; the full URL (a Slack URL is a credential) is in the envelope. */
    target: text("target").notNull(),
    keyId: text("key_id").notNull(),
    envelope: text("envelope").notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("notification_channels_owner_id_name_key").on(t.ownerId, t.name)],
);

/** An owner's alert rules (core/alerts/alert-rules.ts); no row: the defaults. */
export const alertRuleSettings = pgTable("alert_rule_settings", {
  ownerId: uuid("owner_id")
    .primaryKey()
    .references(() => owners.id, { onDelete: "cascade" }),
  rules: jsonb("rules").$type<Record<string, unknown>>().notNull(),
  updatedAt: updatedAt(),
});

/**
 * One condition of one server (or one failed operation/rollout): pending while it holds for less than the
 * grace period, firing once notified, resolved or dropped (ended within the grace period, never notified)
 * when it ends; `notified` for one-shot events (a failed operation).
 */
export const alerts = pgTable(
  "alerts",
  {
    id: uuid("id").primaryKey(),
    ownerId: uuid("owner_id")
      .notNull()
      .references(() => owners.id, { onDelete: "cascade" }),
    serverId: uuid("server_id").references(() => servers.id, { onDelete: "cascade" }),
    /** The condition (core/kernel/kinds.ts alertKinds). */
    rule: text("rule", { enum: alertKinds }).notNull(),
    /** What makes two alerts of one rule different (a server id, an operation id, a rollout id). */
    subject: text("subject").notNull(),
    state: text("state", { enum: alertStates }).notNull(),
    summary: text("summary").notNull(),
    details: jsonb("details").$type<Record<string, unknown>>().notNull().default({}),
    since: timestamp("since", { withTimezone: true, mode: "date" }).notNull(),
    firedAt: timestamp("fired_at", { withTimezone: true, mode: "date" }),
    endedAt: timestamp("ended_at", { withTimezone: true, mode: "date" }),
    createdAt: createdAt(),
  },
  (t) => [
    // One open alert per condition: a second OFFLINE event for a server joins the open one.
    uniqueIndex("alerts_open_key").on(t.ownerId, t.rule, t.subject).where(sql`${t.state} in ('pending', 'firing')`),
    index("alerts_pending_since_idx").on(t.since).where(sql`${t.state} = 'pending'`),
    // ListAlerts: an owner's alerts newest first, or one server's.
    index("alerts_owner_id_id_idx").on(t.ownerId, t.id),
    index("alerts_server_id_idx").on(t.serverId),
  ],
);

/** Each state an alert entered and when (GetAlert's history); at most one row per state, deleted with the alert. */
export const alertTransitions = pgTable(
  "alert_transitions",
  {
    id: uuid("id").primaryKey(),
    alertId: uuid("alert_id")
      .notNull()
      .references(() => alerts.id, { onDelete: "cascade" }),
    state: text("state", { enum: alertStates }).notNull(),
    at: timestamp("at", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [index("alert_transitions_alert_id_idx").on(t.alertId)],
);

/** One message to one channel; its id is the dedupe id the receiver sees on every attempt. */
export const notificationDeliveries = pgTable(
  "notification_deliveries",
  {
    id: uuid("id").primaryKey(),
    ownerId: uuid("owner_id")
      .notNull()
      .references(() => owners.id, { onDelete: "cascade" }),
    channelId: uuid("channel_id")
      .notNull()
      .references(() => notificationChannels.id, { onDelete: "cascade" }),
    alertId: uuid("alert_id")
      .notNull()
      .references(() => alerts.id, { onDelete: "cascade" }),
    /** firing or resolved */
    event: text("event").notNull(),
    /** The message as sent (no secret): the same body on every attempt. */
    message: jsonb("message").$type<Record<string, unknown>>().notNull(),
    status: text("status", { enum: deliveryStatuses }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    /** A sender holds the row until then; another process takes it over only after (a crashed sender). */
    leaseUntil: timestamp("lease_until", { withTimezone: true, mode: "date" }),
    lastError: text("last_error"),
    deliveredAt: timestamp("delivered_at", { withTimezone: true, mode: "date" }),
    createdAt: createdAt(),
  },
  (t) => [
    index("notification_deliveries_due_idx").on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    index("notification_deliveries_alert_id_idx").on(t.alertId),
    index("notification_deliveries_channel_id_idx").on(t.channelId),
  ],
);

/**
 * The audit trail (core/audit/): append-only, one hash chain per organization. No foreign key to
 * owners: the record outlives what it is about. The hash is SHA-256 over the previous entry's
 * hash, the sequence and the canonical encoding of the entry (core/audit/chain.ts).
 */
export const auditEvents = pgTable(
  "audit_events",
  {
    /** The chain: an organization, or the nil UUID for callers refused before they named one. */
    ownerId: uuid("owner_id").notNull(),
    seq: bigint("seq", { mode: "number" }).notNull(),
    /** UUIDv7, the page key. */
    id: uuid("id").notNull(),
    at: timestamp("at", { withTimezone: true, mode: "date" }).notNull(),
    actorKind: text("actor_kind", { enum: auditActorKinds }).notNull(),
    /** The token, member, service account or agent (server) id; the client address for `anonymous`; empty for system actors. */
    actorId: text("actor_id").notNull(),
    /** A system actor's name. */
    actorName: text("actor_name", { enum: systemActors }),
    /** The RPC's full method name or a declared action (`ssh.login`). */
    action: text("action").notNull(),
    targetIds: text("target_ids").array().notNull(),
    clientAddress: text("client_address"),
    userAgent: text("user_agent"),
    requestId: text("request_id"),
    traceId: text("trace_id"),
    /** What the action was part of: the operation and step of an SSH login. */
    detail: text("detail"),
    outcome: text("outcome", { enum: auditOutcomes }).notNull(),
    /** Hex SHA-256, chained. */
    hash: text("hash").notNull(),
  },
  (t) => [primaryKey({ columns: [t.ownerId, t.seq] }), uniqueIndex("audit_events_owner_id_id_idx").on(t.ownerId, t.id)],
);

/** Each chain's head (appends serialise on this row) and the checkpoint retention leaves behind. */
export const auditChains = pgTable("audit_chains", {
  ownerId: uuid("owner_id").primaryKey(),
  lastSeq: bigint("last_seq", { mode: "number" }).notNull(),
  lastHash: text("last_hash").notNull(),
  /** The last entry retention removed (0 and the genesis hash while none was): verification starts after it. */
  checkpointSeq: bigint("checkpoint_seq", { mode: "number" }).notNull().default(0),
  checkpointHash: text("checkpoint_hash").notNull().default(sql`repeat('0', 64)`),
});
