import { defineSearchAttributeKey, SearchAttributeType } from "@temporalio/common";
import type { WorkflowRole } from "../core/kernel/kinds.js";

/** Custom search attributes: every workflow carries them so operators can filter in the Web UI. */
export const serverIdAttribute = defineSearchAttributeKey("AxionServerId", SearchAttributeType.KEYWORD);
export const clusterIdAttribute = defineSearchAttributeKey("AxionClusterId", SearchAttributeType.KEYWORD);
export const ownerIdAttribute = defineSearchAttributeKey("AxionOwnerId", SearchAttributeType.KEYWORD);
export const operationAttribute = defineSearchAttributeKey("AxionOperation", SearchAttributeType.KEYWORD);
/** An operation's server by the name it had when the operation started: a column in the Web UI's workflow list. */
export const serverNameAttribute = defineSearchAttributeKey("AxionServerName", SearchAttributeType.KEYWORD);
/** On a rollout's workflow and on every child it starts. */
export const rolloutIdAttribute = defineSearchAttributeKey("AxionRolloutId", SearchAttributeType.KEYWORD);

/** Every workflow this service starts: operation, rollout, plan or housekeeping (docs/provisioning.md has the Web UI query). */
export const workflowRoleAttribute = defineSearchAttributeKey("AxionWorkflowRole", SearchAttributeType.KEYWORD);
export const workflowRole = (role: WorkflowRole) => ({ key: workflowRoleAttribute, value: role });

export const customSearchAttributes = [
  serverIdAttribute,
  serverNameAttribute,
  clusterIdAttribute,
  ownerIdAttribute,
  operationAttribute,
  rolloutIdAttribute,
  workflowRoleAttribute,
];
