import type { ActivityDeps } from "./deps.js";
import { createProvisioningActivities } from "./provisioning.js";
import { createRecordActivities } from "./records.js";

export type { ActivityDeps } from "./deps.js";

/** Activities registered with the worker, built once per process (typed like temporalio's samples). */
export function createActivities(deps: ActivityDeps) {
  return { ...createProvisioningActivities(deps), ...createRecordActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
