import { defineSearchAttributeKey, SearchAttributeType } from "@temporalio/common";

/** Custom search attributes: every workflow carries them so operators can filter in the Web UI. */
export const serverIdAttribute = defineSearchAttributeKey("AxionServerId", SearchAttributeType.KEYWORD);
export const clusterIdAttribute = defineSearchAttributeKey("AxionClusterId", SearchAttributeType.KEYWORD);
export const ownerIdAttribute = defineSearchAttributeKey("AxionOwnerId", SearchAttributeType.KEYWORD);
export const operationAttribute = defineSearchAttributeKey("AxionOperation", SearchAttributeType.KEYWORD);
/** On a rollout's workflow and on every child it starts. */
export const rolloutIdAttribute = defineSearchAttributeKey("AxionRolloutId", SearchAttributeType.KEYWORD);

export const customSearchAttributes = [serverIdAttribute, clusterIdAttribute, ownerIdAttribute, operationAttribute, rolloutIdAttribute];
