import { installAndAwaitAgent } from "./agent-step.js";
import type { OperationInput } from "./definitions.js";
import { runOperation } from "./operation.js";
import { ProgressTracker } from "./progress.js";

/** InstallAgent: a forced (re)install, which also rotates the agent's token. */
export async function installAgentWorkflow(input: OperationInput): Promise<void> {
  const progress = new ProgressTracker(input, "install_agent");
  await runOperation(input, progress, () => installAndAwaitAgent(progress, input.serverId, true));
}
