import { installAndAwaitAgent } from "./agent-step.js";
import type { HostFacts, OperationInput } from "./definitions.js";
import { runOperation } from "./operation.js";
import { ProgressTracker } from "./progress.js";
import { recordActivities, sshActivities } from "./proxies.js";

export interface BootstrapResult {
  facts: HostFacts;
  changedSteps: string[];
}

/**
 * ConfigureServer: connect → preflight → admin user → Docker → firewall → SSH
 * hardening → deploy key → agent (installed, then registered). Every step checks before it acts, so a re-run on a
 * configured host changes nothing and reports each step as unchanged.
 */
export async function bootstrapWorkflow(input: OperationInput): Promise<BootstrapResult> {
  const progress = new ProgressTracker(input, "bootstrap");
  const server = { serverId: input.serverId };
  return runOperation(input, progress, async () => {
    await recordActivities.setServerStatus({ ...server, status: "PROVISIONING", reason: "bootstrap started", actor: progress.actor });
    await progress.step("connect", () => sshActivities.connect(server));
    const facts = await progress.step("preflight", async () => {
      const f = await sshActivities.preflight(server);
      return {
        ...f,
        changed: false,
        detail: `${f.osPrettyName} ${f.arch}, ${f.rootFreeMb} MB free, docker ${f.dockerVersion ?? "absent"}`,
      };
    });
    await progress.step("admin_user", () => sshActivities.ensureAdminUser(server));
    await progress.step("docker", () => sshActivities.ensureDocker(server));
    await progress.step("firewall", () => sshActivities.ensureFirewall(server));
    await progress.step("ssh_hardening", () => sshActivities.hardenSsh(server));
    await progress.step("deploy_key", () => sshActivities.setDeployKey({ ...server, action: "add" }));
    await installAndAwaitAgent(progress, input.serverId, false);
    await recordActivities.setServerStatus({ ...server, status: "CONFIGURED", reason: "bootstrap finished", actor: progress.actor });
    const { changed: _c, detail: _d, ...hostFacts } = facts;
    return {
      facts: hostFacts,
      changedSteps: progress.state.steps.filter((s) => s.status === "done").map((s) => s.name),
    };
  });
}
