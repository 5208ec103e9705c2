import { ApplicationFailure, executeChild, proxyActivities, sleep } from "@temporalio/workflow";
import type { Activities } from "../activities/index.js";
import { workflowRole } from "../temporal/search-attributes.js";
import { bootstrapWorkflow } from "./bootstrap.js";
import type { ReinstallInput } from "./definitions.js";
import { FailureType, nonRetryableErrorTypes } from "./failure-types.js";
import { runOperation } from "./operation.js";
import { ProgressTracker } from "./progress.js";
import { recordActivities } from "./proxies.js";
import { waitingForSshShare } from "./ssh-share.js";

/** The rebuild request is sent once: Time4VPS has no request id, and a retry could start a second rebuild. */
const provider = proxyActivities<Activities>({ startToCloseTimeout: "1 minute", retry: { maximumAttempts: 1 } });
const providerPolls = proxyActivities<Activities>({
  startToCloseTimeout: "1 minute",
  retry: { maximumAttempts: 5, initialInterval: "5 seconds", nonRetryableErrorTypes },
});
/** A rebuilt server takes minutes to boot: keep trying to connect, durably. */
const waitForSsh = waitingForSshShare(
  proxyActivities<Activities>({
    startToCloseTimeout: "1 minute",
    heartbeatTimeout: "30 seconds",
    retry: {
      maximumAttempts: 60,
      initialInterval: "5 seconds",
      backoffCoefficient: 1.5,
      maximumInterval: "30 seconds",
      nonRetryableErrorTypes,
    },
  }),
);

const REBUILD_DEADLINE_MS = 2 * 60 * 60 * 1000;

/**
 * ReinstallServer (force_reinstall): the provider rebuilds the OS, the workflow
 * waits for it with durable timers, forgets the old host key on purpose, waits
 * for SSH, then runs the bootstrap as a child workflow.
 */
export async function reinstallWorkflow(input: ReinstallInput): Promise<{ os: string }> {
  const progress = new ProgressTracker(input, "reinstall");
  const server = { serverId: input.serverId };
  return runOperation(input, progress, async () => {
    await recordActivities.setServerStatus({ ...server, status: "REINSTALLING", reason: "OS rebuild requested", actor: progress.actor });
    const { taskId, os } = await progress.step("request_rebuild", async () => {
      const r = await provider.requestReinstall({ ...server, os: input.os });
      return { ...r, changed: true, detail: `provider task ${r.taskId}, OS ${r.os}` };
    });
    await progress.step("wait_rebuild", async () => {
      const deadline = Date.now() + REBUILD_DEADLINE_MS;
      for (;;) {
        const task = await providerPolls.reinstallTaskState({ ...server, taskId });
        if (task.state === "succeeded") return { changed: true, detail: task.detail };
        if (task.state === "failed")
          throw ApplicationFailure.nonRetryable(`the provider's rebuild failed: ${task.detail}`, FailureType.ProviderTaskFailed);
        if (Date.now() > deadline)
          throw ApplicationFailure.nonRetryable("the provider's rebuild did not finish in 2 hours", "ProviderTaskTimeout");
        await sleep(`${input.pollIntervalSeconds ?? 15} seconds`);
      }
    });
    await progress.step("reset_host_key", async () => {
      await recordActivities.clearHostKeyPin(server);
      return { changed: true, detail: "host key pin cleared: the rebuilt OS has new keys" };
    });
    await progress.step("wait_ssh", () => waitForSsh.connect(server));
    await progress.step("bootstrap", async () => {
      const result = await executeChild(bootstrapWorkflow, {
        workflowId: `bootstrap/${input.serverId}/after-reinstall/${input.operationId}`,
        args: [{ ...server, operationId: input.operationId, nested: true }],
        typedSearchAttributes: [workflowRole("operation")],
      });
      return { changed: result.changedSteps.length > 0, detail: `changed: ${result.changedSteps.join(", ") || "nothing"}` };
    });
    await recordActivities.setServerStatus({
      ...server,
      status: "CONFIGURED",
      reason: `reinstalled with ${os} and bootstrapped`,
      actor: progress.actor,
    });
    return { os };
  });
}
