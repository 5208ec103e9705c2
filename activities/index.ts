import { createAgentActivities } from "./agent.js";
import type { ActivityDeps } from "./deps.js";
import { createFleetActivities } from "./fleet.js";
import { createLivenessActivities } from "./liveness.js";
import { createPlanActivities } from "./plan.js";
import { createProvisioningActivities } from "./provisioning.js";
import { createReconcileActivities } from "./reconcile.js";
import { createRecordActivities } from "./records.js";
import { createRecoveryActivities } from "./recovery.js";
import { createReinstallActivities } from "./reinstall.js";
import { createRolloutActivities } from "./rollouts.js";

export type { ActivityDeps } from "./deps.js";

/** Activities registered with the worker, built once per process (typed like temporalio's samples). */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createProvisioningActivities(deps),
    ...createRecoveryActivities(deps),
    ...createReinstallActivities(deps),
    ...createRecordActivities(deps),
    ...createFleetActivities(deps),
    ...createAgentActivities(deps),
    ...createLivenessActivities(deps),
    ...createReconcileActivities(deps),
    ...createRolloutActivities(deps),
    ...createPlanActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
