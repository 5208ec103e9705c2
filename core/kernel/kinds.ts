/**
 * Every kind and status of the system, each declared once, as values with
 * their union types. Imported by workflows, activities, core, the API, the CLI
 * and db/schema.ts, so it imports nothing: no I/O, no Node built-ins (workflow
 * sandbox). The proto mapping of each is in api/enum-mapping.ts.
 */

/** What one operation row runs on one server (one workflow). */
export const operationKinds = ["test_connection", "bootstrap", "deploy_key", "recovery", "reinstall", "install_agent"] as const;
export type OperationKind = (typeof operationKinds)[number];

export const operationStatuses = ["RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"] as const;
export type OperationStatus = (typeof operationStatuses)[number];

/** What a fleet operation (a rollout, a plan) does to each server: one of the operation kinds, deploy key split by action. */
export const rolloutKinds = ["configure", "deploy_key_add", "deploy_key_remove", "recover", "install_agent", "test_connection"] as const;
export type RolloutKind = (typeof rolloutKinds)[number];

export const rolloutStatuses = ["RUNNING", "PAUSED", "SUCCEEDED", "FAILED", "ABORTED"] as const;
export type RolloutStatus = (typeof rolloutStatuses)[number];
const ended = ["SUCCEEDED", "FAILED", "ABORTED"] as const satisfies readonly RolloutStatus[];
export type EndedRolloutStatus = (typeof ended)[number];
/** A rollout in one of these has ended for good. */
export const endedRolloutStatuses: readonly RolloutStatus[] = ended;

/** What became of one server of a rollout. */
export const rolloutServerStates = ["PENDING", "WAITING", "RUNNING", "SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED", "NOT_REACHED"] as const;
export type RolloutServerState = (typeof rolloutServerStates)[number];
/**
 * A rollout server in one of these is done with (run, skipped, cancelled, or never reached because
 * the rollout ended first: NOT_REACHED, so an ended rollout shows nothing as still queued).
 */
export const endedRolloutServerStates: readonly RolloutServerState[] = ["SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED", "NOT_REACHED"];
/** Nothing has been done to a server in one of these yet: when its rollout ends, it becomes NOT_REACHED. */
export const unreachedRolloutServerStates: readonly RolloutServerState[] = ["PENDING", "WAITING"];

export const serverStatuses = [
  "PENDING",
  "PROVISIONING",
  "ONLINE",
  "OFFLINE",
  "UNREACHABLE",
  "HOSTKEY_MISMATCH",
  "ERROR",
  "REINSTALLING",
  "CONFIGURED",
] as const;
export type ServerStatus = (typeof serverStatuses)[number];
/** A server in one of these is being changed by an operation: only that operation (or the reconciler, once it is gone) moves it on. */
export const busyStatuses: readonly ServerStatus[] = ["PROVISIONING", "REINSTALLING"];

export const authMethods = ["private_key", "password"] as const;
export type AuthMethod = (typeof authMethods)[number];

export const providerKinds = ["time4vps"] as const;
export type ProviderKind = (typeof providerKinds)[number];

export const notificationChannelKinds = ["webhook", "slack"] as const;
export type NotificationChannelKind = (typeof notificationChannelKinds)[number];

/** What an alert is about: the rule that raised it (`alerts.rule`, ListAlerts' kind filter). */
export const alertKinds = [
  "server_offline",
  "server_unreachable",
  "hostkey_mismatch",
  "server_flapping",
  "disk",
  "memory",
  "operation_failed",
  "rollout_failed",
] as const;
export type AlertKind = (typeof alertKinds)[number];

export const alertStates = ["pending", "firing", "resolved", "dropped", "notified"] as const;
export type AlertState = (typeof alertStates)[number];

export const deliveryStatuses = ["pending", "delivered", "failed"] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];

/** How a connection test (and a fleet check's login) ended. */
export const connectionOutcomes = ["ok", "auth_failed", "unreachable", "timeout", "hostkey_mismatch", "refused_by_policy"] as const;
export type ConnectionOutcome = (typeof connectionOutcomes)[number];

/** What a deploy-key operation does with the owner's key in the login user's authorized_keys. */
export const deployKeyActions = ["add", "remove"] as const;
export type DeployKeyAction = (typeof deployKeyActions)[number];

/** What a rollout does with a server that is busy with another operation. */
export const busyPolicies = ["skip", "wait"] as const;
export type BusyPolicy = (typeof busyPolicies)[number];

/** The event types on the server-events topic (core/kernel/outbox.ts, core/rollouts/rollouts.ts), for alerting and Kafka consumers. */
export const eventTypes = [
  "server.status_changed",
  "agent.registered",
  "operation.started",
  "operation.finished",
  "operation.failed",
  "rollout.started",
  "rollout.batch_finished",
  "rollout.finished",
  "rollout.failed",
  "rollout.aborted",
  "audit.recorded",
] as const;
export type EventType = (typeof eventTypes)[number];

/** A check's verdict on one step (and on a server), run read-only on the real host. */
export const planOutcomes = ["would_change", "unchanged", "cannot"] as const;
export type PlanOutcome = (typeof planOutcomes)[number];

/**
 * What a Temporal workflow is for, as its AxionWorkflowRole search attribute: the once-a-minute
 * schedules and the liveness monitor are housekeeping, which operators filter out of the Web UI.
 */
export const workflowRoles = ["operation", "rollout", "plan", "housekeeping"] as const;
export type WorkflowRole = (typeof workflowRoles)[number];

/** A member's or token's role, weakest first: each role may do everything the ones before it may (issue 19). */
export const roles = ["viewer", "operator", "admin"] as const;
export type Role = (typeof roles)[number];

/** Who an audit entry says acted (core/audit/): `anonymous` is a caller refused before it named an organization. */
export const auditActorKinds = ["token", "member", "service_account", "agent", "system", "anonymous"] as const;
export type AuditActorKind = (typeof auditActorKinds)[number];

/** The system actors an audit entry names (actor kind `system`). */
export const systemActors = ["schedule", "monitor", "reconciler", "seed_queue", "worker"] as const;
export type SystemActorName = (typeof systemActors)[number];

/**
 * What an audit entry records beside RPCs (whose action is the method's full name,
 * `axion.infrastructure.v1.ClusterService/UpdateCluster`).
 */
export const auditActions = ["ssh.login", "operation.settled", "server.marked_offline"] as const;
export type AuditAction = (typeof auditActions)[number];

/** How an audited action ended: `ok` or a Connect error code as written on the wire. */
export const auditOutcomes = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
] as const;
export type AuditOutcome = (typeof auditOutcomes)[number];
