import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { DescEnum } from "@bufbuild/protobuf";
import {
  alertKindProto,
  alertStateProto,
  auditActorKindProto,
  authMethodProto,
  busyPolicyProto,
  connectionOutcomeProto,
  deliveryStatusProto,
  deployKeyActionProto,
  notificationChannelKindProto,
  operationKindProto,
  operationStatusProto,
  type ProtoEnum,
  planOutcomeProto,
  providerKindProto,
  roleProto,
  rolloutKindProto,
  rolloutServerStateProto,
  rolloutStatusProto,
  serverStatusProto,
} from "../api/enum-mapping.js";
import {
  alertKinds,
  alertStates,
  auditActorKinds,
  authMethods,
  busyPolicies,
  connectionOutcomes,
  deliveryStatuses,
  deployKeyActions,
  notificationChannelKinds,
  operationKinds,
  operationStatuses,
  planOutcomes,
  providerKinds,
  roles,
  rolloutKinds,
  rolloutServerStates,
  rolloutStatuses,
  serverStatuses,
} from "../core/kernel/kinds.js";
import { AuditActorKindSchema } from "../gen/axion/infrastructure/v1/audit_service_pb.js";
import {
  AlertKindSchema,
  AlertStateSchema,
  NotificationChannelKindSchema,
  NotificationDeliveryStatusSchema,
} from "../gen/axion/infrastructure/v1/notification_service_pb.js";
import { OperationKindSchema, OperationStatusSchema } from "../gen/axion/infrastructure/v1/operation_service_pb.js";
import { PlanOutcomeSchema, RolloutKindSchema } from "../gen/axion/infrastructure/v1/plan_pb.js";
import { ProviderKindSchema } from "../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import {
  BusyServerPolicySchema,
  RolloutServerStateSchema,
  RolloutStatusSchema,
} from "../gen/axion/infrastructure/v1/rollout_service_pb.js";
import {
  ConnectionOutcomeSchema,
  DeployKeyActionSchema,
  ServerStatusSchema,
  SshAuthMethodSchema,
} from "../gen/axion/infrastructure/v1/server_service_pb.js";
import { RoleSchema } from "../gen/axion/infrastructure/v1/token_service_pb.js";

const enums: [DescEnum, ProtoEnum<string, number>, readonly string[]][] = [
  [ServerStatusSchema, serverStatusProto, serverStatuses],
  [OperationKindSchema, operationKindProto, operationKinds],
  [OperationStatusSchema, operationStatusProto, operationStatuses],
  [RolloutKindSchema, rolloutKindProto, rolloutKinds],
  [RolloutStatusSchema, rolloutStatusProto, rolloutStatuses],
  [RolloutServerStateSchema, rolloutServerStateProto, rolloutServerStates],
  [PlanOutcomeSchema, planOutcomeProto, planOutcomes],
  [ProviderKindSchema, providerKindProto, providerKinds],
  [NotificationChannelKindSchema, notificationChannelKindProto, notificationChannelKinds],
  [AlertKindSchema, alertKindProto, alertKinds],
  [AlertStateSchema, alertStateProto, alertStates],
  [NotificationDeliveryStatusSchema, deliveryStatusProto, deliveryStatuses],
  [SshAuthMethodSchema, authMethodProto, authMethods],
  [BusyServerPolicySchema, busyPolicyProto, busyPolicies],
  [ConnectionOutcomeSchema, connectionOutcomeProto, connectionOutcomes],
  [DeployKeyActionSchema, deployKeyActionProto, deployKeyActions],
  [RoleSchema, roleProto, roles],
  [AuditActorKindSchema, auditActorKindProto, auditActorKinds],
];

describe("proto enums and the internal kinds map one to one", () => {
  for (const [schema, mapping, names] of enums) {
    test(`${schema.typeName}: every value but UNSPECIFIED has the internal name it spells, and back`, () => {
      for (const value of schema.values) {
        const name = mapping.fromProto(value.number);
        if (value.number === 0) {
          assert.equal(name, undefined, `${value.name} is no kind`);
          continue;
        }
        assert.ok(name, `${value.name} has no internal name`);
        // The proto value spells the name: a table that swaps two values fails here.
        assert.equal(name.toUpperCase(), value.localName, `${value.name} maps to ${name}`);
        assert.equal(mapping.toProto(name), value.number, `${name} maps back to ${value.name}`);
      }
    });

    test(`${schema.typeName}: the table names exactly the kinds of core/kernel/kinds.ts`, () => {
      assert.deepEqual([...mapping.names].sort(), [...names].sort());
      assert.equal(mapping.names.length, schema.values.length - 1, "one internal name per proto value but UNSPECIFIED");
    });
  }
});
