import { ApplicationFailure } from "@temporalio/common";
import { providerClientFor } from "../core/inventory/provider-accounts.js";
import { clearHostKeyPin } from "../core/inventory/server-status.js";
import { loadServerCredential } from "../core/inventory/servers.js";
import { AppError } from "../core/kernel/errors.js";
import { checkReinstallable } from "../core/operations/reinstall-checks.js";
import { sharedKeyParsing } from "../core/security/key-parsing.js";
import type { ActivityDeps } from "./deps.js";
import { ProviderErrorType, type ProviderTaskState, type VpsProvider } from "./providers/provider.js";
import { loadServer } from "./server-access.js";

/** The public half of the server's stored key, so the rebuilt OS accepts the same credential. Public: safe to send. */
async function publicKeyFor(deps: ActivityDeps, server: { id: string; ownerId: string }): Promise<string | undefined> {
  const credential = await loadServerCredential(deps, server.id);
  if (credential.kind !== "private_key") return undefined;
  // Off the event loop: an encrypted key costs a bcrypt KDF.
  const prepared = await (deps.keyParsing ?? sharedKeyParsing()).prepare({
    ownerId: server.ownerId,
    key: credential.privateKey,
    passphrase: credential.passphrase || undefined,
    overShare: "queue",
  });
  return prepared.ok ? `${prepared.publicKey} axion` : undefined;
}

/** Refusals of the checks are final; an unavailable provider is reported as such. Messages never carry credentials. */
function asFailure(error: unknown): unknown {
  if (!(error instanceof AppError)) return error;
  if (error.kind === "unavailable") return ApplicationFailure.retryable(error.message, ProviderErrorType.unavailable);
  return ApplicationFailure.nonRetryable(error.message, "ReinstallRefused");
}

/** The provider client of the server's account, credentials decrypted here by account id (never from workflow input). */
async function providerOf(deps: ActivityDeps, serverId: string): Promise<{ provider: VpsProvider; ref: string }> {
  const server = await loadServer(deps, serverId);
  if (!server.providerAccountId || !server.providerServerId) {
    throw ApplicationFailure.nonRetryable(`server ${serverId} no longer names a provider account and VPS`, "ReinstallRefused");
  }
  const { provider } = await providerClientFor(deps, server.ownerId, server.providerAccountId).catch((error) => {
    throw asFailure(error);
  });
  return { provider, ref: server.providerServerId };
}

/** Provider activities: one API call each (plus the checks' read); the workflow waits between them with durable timers. */
export function createReinstallActivities(deps: ActivityDeps) {
  return {
    async requestReinstall(input: { serverId: string; os?: string }): Promise<{ taskId: string; os: string }> {
      // Checked again here, right before the rebuild: the host or the provider's record may have changed since the API's check.
      const server = await loadServer(deps, input.serverId);
      const { provider, ref } = await checkReinstallable(deps, server).catch((error) => {
        throw asFailure(error);
      });
      const os = input.os || (await provider.listOperatingSystems(ref))[0];
      if (!os) throw ApplicationFailure.nonRetryable("the provider offers no operating system for this server", ProviderErrorType.invalid);
      const { taskId } = await provider.reinstall(ref, { os, sshKey: await publicKeyFor(deps, server) });
      return { taskId, os };
    },
    async reinstallTaskState(input: { serverId: string; taskId: string }): Promise<{ state: ProviderTaskState; detail: string }> {
      const { provider, ref } = await providerOf(deps, input.serverId);
      return provider.getTask(ref, input.taskId);
    },
    async clearHostKeyPin(input: { serverId: string }): Promise<void> {
      await clearHostKeyPin(deps.db, input.serverId);
    },
  };
}
