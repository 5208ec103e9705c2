import type { DeployKeyAction } from "../core/kernel/kinds.js";
import type { OperationInput, StepResult } from "./definitions.js";
import { runOperation } from "./operation.js";
import { ProgressTracker } from "./progress.js";
import { sshActivities } from "./proxies.js";

export interface DeployKeyInput extends OperationInput {
  action: DeployKeyAction;
}

/** SetupDeployKey: ORCHESTRATOR_SSH_PUBLIC_KEY added to (or removed from) the admin user's authorized_keys exactly once. */
export async function deployKeyWorkflow(input: DeployKeyInput): Promise<StepResult> {
  const progress = new ProgressTracker(input, "deploy_key");
  return runOperation(input, progress, () =>
    progress.step(`deploy_key_${input.action}`, () => sshActivities.setDeployKey({ serverId: input.serverId, action: input.action })),
  );
}
