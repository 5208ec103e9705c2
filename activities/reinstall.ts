import { ApplicationFailure } from "@temporalio/common";
import { sharedKeyParsing } from "../core/key-parsing.js";
import { clearHostKeyPin } from "../core/server-status.js";
import { loadServerCredential } from "../core/servers.js";
import type { ActivityDeps } from "./deps.js";
import type { ProviderTaskState, VpsProvider } from "./providers/provider.js";
import { loadServer } from "./server-access.js";

/** The public half of the server's stored key, so the rebuilt OS accepts the same credential. Public: safe to send. */
async function publicKeyFor(deps: ActivityDeps, serverId: string): Promise<string | undefined> {
  const credential = await loadServerCredential(deps, serverId);
  if (credential.kind !== "private_key") return undefined;
  // Off the event loop: an encrypted key costs a bcrypt KDF.
  const prepared = await (deps.keyParsing ?? sharedKeyParsing()).prepare(credential.privateKey, credential.passphrase || undefined);
  return prepared.ok ? `${prepared.publicKey} axion` : undefined;
}

async function providerFor(deps: ActivityDeps, serverId: string): Promise<{ provider: VpsProvider; ref: string }> {
  const server = await loadServer(deps, serverId);
  if (!server.provider || !server.providerServerId) {
    throw ApplicationFailure.nonRetryable(
      `server ${serverId} has no VPS provider set: set provider and provider_server_id`,
      "ProviderNotConfigured",
    );
  }
  const provider = deps.providers?.[server.provider];
  if (!provider)
    throw ApplicationFailure.nonRetryable(`VPS provider ${server.provider} is not configured on this worker`, "ProviderNotConfigured");
  return { provider, ref: server.providerServerId };
}

/** Provider activities: one API call each; the workflow waits between them with durable timers. */
export function createReinstallActivities(deps: ActivityDeps) {
  return {
    async requestReinstall(input: { serverId: string; os?: string }): Promise<{ taskId: string; os: string }> {
      const { provider, ref } = await providerFor(deps, input.serverId);
      const os = input.os || (await provider.listOperatingSystems(ref))[0];
      if (!os)
        throw ApplicationFailure.nonRetryable("the provider offers no operating system for this server", "ProviderInvalidRequestError");
      const { taskId } = await provider.reinstall(ref, { os, sshKey: await publicKeyFor(deps, input.serverId) });
      return { taskId, os };
    },
    async reinstallTaskState(input: { serverId: string; taskId: string }): Promise<{ state: ProviderTaskState; detail: string }> {
      const { provider, ref } = await providerFor(deps, input.serverId);
      return provider.getTask(ref, input.taskId);
    },
    async clearHostKeyPin(input: { serverId: string }): Promise<void> {
      await clearHostKeyPin(deps.db, input.serverId);
    },
  };
}
