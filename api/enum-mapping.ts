import type {
  AlertKind,
  AlertState,
  AuditActorKind,
  AuthMethod,
  BusyPolicy,
  ConnectionOutcome,
  DeliveryStatus,
  DeployKeyAction,
  NotificationChannelKind,
  OperationKind,
  OperationStatus,
  PlanOutcome,
  ProviderKind,
  Role,
  RolloutKind,
  RolloutServerState,
  RolloutStatus,
  ServerStatus,
} from "../core/kernel/kinds.js";
import { AuditActorKind as ProtoAuditActorKind } from "../gen/axion/infrastructure/v1/audit_service_pb.js";
import {
  AlertKind as ProtoAlertKind,
  AlertState as ProtoAlertState,
  NotificationChannelKind as ProtoNotificationChannelKind,
  NotificationDeliveryStatus as ProtoNotificationDeliveryStatus,
} from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import {
  OperationKind as ProtoOperationKind,
  OperationStatus as ProtoOperationStatus,
} from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { PlanOutcome as ProtoPlanOutcome, RolloutKind as ProtoRolloutKind } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { ProviderKind as ProtoProviderKind } from "../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import {
  BusyServerPolicy as ProtoBusyServerPolicy,
  RolloutServerState as ProtoRolloutServerState,
  RolloutStatus as ProtoRolloutStatus,
} from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import {
  ConnectionOutcome as ProtoConnectionOutcome,
  DeployKeyAction as ProtoDeployKeyAction,
  ServerStatus as ProtoServerStatus,
  SshAuthMethod as ProtoSshAuthMethod,
} from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { Role as ProtoRole } from "../gen/axion/infrastructure/v1/token_service_pb.js";

/**
 * One table per enum between the internal names (core/kernel/kinds.ts) and the proto
 * values. Each table is checked both ways at compile time: `satisfies
 * Record<Name, …>` wants every name once, and `protoEnum` wants every proto
 * value but UNSPECIFIED (0) named, so a kind added on either side alone does
 * not compile. test/enum-mapping.test.ts walks the generated descriptors too.
 */
export interface ProtoEnum<Name extends string, Proto extends number> {
  /** The internal names, in table order. */
  readonly names: readonly Name[];
  toProto(name: Name): Proto;
  /** Undefined for UNSPECIFIED and for a number no name has. */
  fromProto(value: Proto): Name | undefined;
}

type Unnamed<Proto extends number, Table extends Record<string, Proto>> = Exclude<Proto, Table[keyof Table] | Extract<Proto, 0>>;

function protoEnum<Proto extends number>() {
  return <const Table extends Record<string, Proto>>(
    table: Table & ([Unnamed<Proto, Table>] extends [never] ? unknown : { "proto values without a name": Unnamed<Proto, Table> }),
  ): ProtoEnum<keyof Table & string, Proto> => {
    const entries = Object.entries(table) as [keyof Table & string, Proto][];
    const byValue = new Map(entries.map(([name, value]) => [value, name]));
    return {
      names: entries.map(([name]) => name),
      toProto: (name) => table[name],
      fromProto: (value) => byValue.get(value),
    };
  };
}

export const serverStatusProto = protoEnum<ProtoServerStatus>()({
  PENDING: ProtoServerStatus.PENDING,
  PROVISIONING: ProtoServerStatus.PROVISIONING,
  ONLINE: ProtoServerStatus.ONLINE,
  OFFLINE: ProtoServerStatus.OFFLINE,
  UNREACHABLE: ProtoServerStatus.UNREACHABLE,
  HOSTKEY_MISMATCH: ProtoServerStatus.HOSTKEY_MISMATCH,
  ERROR: ProtoServerStatus.ERROR,
  REINSTALLING: ProtoServerStatus.REINSTALLING,
  CONFIGURED: ProtoServerStatus.CONFIGURED,
} satisfies Record<ServerStatus, ProtoServerStatus>);

export const operationKindProto = protoEnum<ProtoOperationKind>()({
  test_connection: ProtoOperationKind.TEST_CONNECTION,
  bootstrap: ProtoOperationKind.BOOTSTRAP,
  deploy_key: ProtoOperationKind.DEPLOY_KEY,
  recovery: ProtoOperationKind.RECOVERY,
  reinstall: ProtoOperationKind.REINSTALL,
  install_agent: ProtoOperationKind.INSTALL_AGENT,
} satisfies Record<OperationKind, ProtoOperationKind>);

export const operationStatusProto = protoEnum<ProtoOperationStatus>()({
  RUNNING: ProtoOperationStatus.RUNNING,
  SUCCEEDED: ProtoOperationStatus.SUCCEEDED,
  FAILED: ProtoOperationStatus.FAILED,
  CANCELLED: ProtoOperationStatus.CANCELLED,
} satisfies Record<OperationStatus, ProtoOperationStatus>);

export const rolloutKindProto = protoEnum<ProtoRolloutKind>()({
  configure: ProtoRolloutKind.CONFIGURE,
  deploy_key_add: ProtoRolloutKind.DEPLOY_KEY_ADD,
  deploy_key_remove: ProtoRolloutKind.DEPLOY_KEY_REMOVE,
  recover: ProtoRolloutKind.RECOVER,
  install_agent: ProtoRolloutKind.INSTALL_AGENT,
  test_connection: ProtoRolloutKind.TEST_CONNECTION,
} satisfies Record<RolloutKind, ProtoRolloutKind>);

export const rolloutStatusProto = protoEnum<ProtoRolloutStatus>()({
  RUNNING: ProtoRolloutStatus.RUNNING,
  PAUSED: ProtoRolloutStatus.PAUSED,
  SUCCEEDED: ProtoRolloutStatus.SUCCEEDED,
  FAILED: ProtoRolloutStatus.FAILED,
  ABORTED: ProtoRolloutStatus.ABORTED,
} satisfies Record<RolloutStatus, ProtoRolloutStatus>);

export const rolloutServerStateProto = protoEnum<ProtoRolloutServerState>()({
  PENDING: ProtoRolloutServerState.PENDING,
  WAITING: ProtoRolloutServerState.WAITING,
  RUNNING: ProtoRolloutServerState.RUNNING,
  SUCCEEDED: ProtoRolloutServerState.SUCCEEDED,
  FAILED: ProtoRolloutServerState.FAILED,
  SKIPPED: ProtoRolloutServerState.SKIPPED,
  CANCELLED: ProtoRolloutServerState.CANCELLED,
  NOT_REACHED: ProtoRolloutServerState.NOT_REACHED,
} satisfies Record<RolloutServerState, ProtoRolloutServerState>);

export const authMethodProto = protoEnum<ProtoSshAuthMethod>()({
  private_key: ProtoSshAuthMethod.PRIVATE_KEY,
  password: ProtoSshAuthMethod.PASSWORD,
} satisfies Record<AuthMethod, ProtoSshAuthMethod>);

export const busyPolicyProto = protoEnum<ProtoBusyServerPolicy>()({
  skip: ProtoBusyServerPolicy.SKIP,
  wait: ProtoBusyServerPolicy.WAIT,
} satisfies Record<BusyPolicy, ProtoBusyServerPolicy>);

export const connectionOutcomeProto = protoEnum<ProtoConnectionOutcome>()({
  ok: ProtoConnectionOutcome.OK,
  auth_failed: ProtoConnectionOutcome.AUTH_FAILED,
  unreachable: ProtoConnectionOutcome.UNREACHABLE,
  timeout: ProtoConnectionOutcome.TIMEOUT,
  hostkey_mismatch: ProtoConnectionOutcome.HOSTKEY_MISMATCH,
  refused_by_policy: ProtoConnectionOutcome.REFUSED_BY_POLICY,
} satisfies Record<ConnectionOutcome, ProtoConnectionOutcome>);

export const deployKeyActionProto = protoEnum<ProtoDeployKeyAction>()({
  add: ProtoDeployKeyAction.ADD,
  remove: ProtoDeployKeyAction.REMOVE,
} satisfies Record<DeployKeyAction, ProtoDeployKeyAction>);

export const planOutcomeProto = protoEnum<ProtoPlanOutcome>()({
  would_change: ProtoPlanOutcome.WOULD_CHANGE,
  unchanged: ProtoPlanOutcome.UNCHANGED,
  cannot: ProtoPlanOutcome.CANNOT,
} satisfies Record<PlanOutcome, ProtoPlanOutcome>);

export const providerKindProto = protoEnum<ProtoProviderKind>()({
  time4vps: ProtoProviderKind.TIME4VPS,
} satisfies Record<ProviderKind, ProtoProviderKind>);

export const roleProto = protoEnum<ProtoRole>()({
  viewer: ProtoRole.VIEWER,
  operator: ProtoRole.OPERATOR,
  admin: ProtoRole.ADMIN,
} satisfies Record<Role, ProtoRole>);

export const notificationChannelKindProto = protoEnum<ProtoNotificationChannelKind>()({
  webhook: ProtoNotificationChannelKind.WEBHOOK,
  slack: ProtoNotificationChannelKind.SLACK,
} satisfies Record<NotificationChannelKind, ProtoNotificationChannelKind>);

export const alertKindProto = protoEnum<ProtoAlertKind>()({
  server_offline: ProtoAlertKind.SERVER_OFFLINE,
  server_unreachable: ProtoAlertKind.SERVER_UNREACHABLE,
  hostkey_mismatch: ProtoAlertKind.HOSTKEY_MISMATCH,
  server_flapping: ProtoAlertKind.SERVER_FLAPPING,
  disk: ProtoAlertKind.DISK,
  memory: ProtoAlertKind.MEMORY,
  operation_failed: ProtoAlertKind.OPERATION_FAILED,
  rollout_failed: ProtoAlertKind.ROLLOUT_FAILED,
} satisfies Record<AlertKind, ProtoAlertKind>);

export const alertStateProto = protoEnum<ProtoAlertState>()({
  pending: ProtoAlertState.PENDING,
  firing: ProtoAlertState.FIRING,
  resolved: ProtoAlertState.RESOLVED,
  dropped: ProtoAlertState.DROPPED,
  notified: ProtoAlertState.NOTIFIED,
} satisfies Record<AlertState, ProtoAlertState>);

export const deliveryStatusProto = protoEnum<ProtoNotificationDeliveryStatus>()({
  pending: ProtoNotificationDeliveryStatus.PENDING,
  delivered: ProtoNotificationDeliveryStatus.DELIVERED,
  failed: ProtoNotificationDeliveryStatus.FAILED,
} satisfies Record<DeliveryStatus, ProtoNotificationDeliveryStatus>);

export const auditActorKindProto = protoEnum<ProtoAuditActorKind>()({
  token: ProtoAuditActorKind.TOKEN,
  member: ProtoAuditActorKind.MEMBER,
  service_account: ProtoAuditActorKind.SERVICE_ACCOUNT,
  agent: ProtoAuditActorKind.AGENT,
  system: ProtoAuditActorKind.SYSTEM,
  anonymous: ProtoAuditActorKind.ANONYMOUS,
} satisfies Record<AuditActorKind, ProtoAuditActorKind>);
