import { isIP } from "node:net";
import { ProviderError, type VpsProvider } from "../../activities/providers/provider.js";
import type { ProviderEndpoints } from "../../activities/providers/registry.js";
import { type ProviderAccountDeps, providerClientFor } from "../inventory/provider-accounts.js";
import type { ServerRow } from "../inventory/servers.js";
import { AppError } from "../kernel/errors.js";
import { log } from "../kernel/log.js";
import { defaultNetworkPolicy, type NetworkPolicy } from "../security/network-policy.js";

export type ReinstallCheckDeps = ProviderAccountDeps & {
  providers?: ProviderEndpoints;
  /** Its resolver answers what the server's host resolves to; default: the built-in policy's. */
  networkPolicy?: NetworkPolicy;
};

const refuse = (message: string, field?: string) => new AppError("failed_precondition", message, { field });

/**
 * Whether the rebuilt machine can be logged into: the rebuild authorizes the
 * server's own public key for root and nothing else (Time4VPS sets a new random
 * root password), and the bootstrap logs in as ssh_user with the stored credential.
 */
export function rebuildLoginProblem(server: Pick<ServerRow, "authMethod" | "sshUser">): AppError | undefined {
  if (server.authMethod !== "private_key") {
    return refuse(
      "a rebuilt server could not be logged into: the provider gives root a new random password and only a key can be installed; set a private_key credential first",
      "credential",
    );
  }
  if (server.sshUser !== "root") {
    return refuse(
      `a rebuilt server has no user "${server.sshUser}": the provider installs the key for root only; set ssh_user to root (the bootstrap creates the admin user again)`,
      "ssh_user",
    );
  }
  return undefined;
}

/** Canonical text of an IP address, so that "2001:db8::1" and "2001:DB8:0::1" compare equal. */
function canonical(address: string): string {
  if (isIP(address) !== 6) return address;
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

async function resolveHost(deps: ReinstallCheckDeps, server: ServerRow): Promise<string[]> {
  const host = server.host;
  if (isIP(host)) return [canonical(host)];
  try {
    const answers = await (deps.networkPolicy ?? defaultNetworkPolicy()).resolver.resolve(host, { owner: server.ownerId });
    return [...new Set(answers.map((a) => canonical(a.address)))];
  } catch {
    throw refuse(`host ${host} does not resolve, so it cannot be matched with the provider's record of the VPS`, "host");
  }
}

/**
 * The one answer to every way the provider's record does not confirm the server:
 * credentials refused, no such VPS for the account, a request refused, or an
 * address that is not the VPS's. Telling them apart would make the check an
 * oracle for a provider password (an owner can store any credentials) and show
 * another account's VPS addresses; the provider's own text is never quoted.
 */
function unconfirmed(server: ServerRow, ref: string, why: string): AppError {
  log.info("reinstall check: the provider's record did not confirm the server", {
    serverId: server.id,
    providerAccountId: server.providerAccountId,
    why,
  });
  return refuse(
    `VPS ${ref} at host ${server.host} could not be confirmed with the server's provider account: its credentials, provider_server_id and host must all match the provider's record (which one does not is not told); nothing was started`,
    "provider_server_id",
  );
}

export interface ReinstallCheckOptions {
  /** Called right before the provider is asked, after every local check passed: throws to refuse (a per-owner budget). */
  beforeProviderCall?: () => void;
}

/**
 * Everything that must hold before a rebuild is requested, checked by the API
 * before it starts the workflow and again by the activity right before the
 * provider call: the rebuilt machine can be logged into, the server names one of
 * its owner's provider accounts and a VPS of that account, and the provider's own
 * record of that VPS holds every address the server's host resolves to. Only the
 * account's stored credentials are used. Answers the provider client to rebuild
 * with; throws FailedPrecondition naming why not (one uniform answer for whatever
 * the provider's record does not confirm), Unavailable when the provider cannot be asked.
 */
export async function checkReinstallable(
  deps: ReinstallCheckDeps,
  server: ServerRow,
  options: ReinstallCheckOptions = {},
): Promise<{ provider: VpsProvider; ref: string }> {
  const loginProblem = rebuildLoginProblem(server);
  if (loginProblem) throw loginProblem;
  if (!server.providerAccountId) {
    throw refuse("the server names no provider account: set provider_account_id (see ProviderAccountService)", "provider_account_id");
  }
  if (!server.providerServerId) throw refuse("the server has no provider_server_id", "provider_server_id");
  // The owner's own data first: nothing about the provider is learnt from these answers.
  const resolved = await resolveHost(deps, server);
  const { provider } = await providerClientFor(deps, server.ownerId, server.providerAccountId);
  const ref = server.providerServerId;
  options.beforeProviderCall?.();
  let addresses: string[];
  try {
    addresses = (await provider.getServer(ref)).addresses;
  } catch (error) {
    if (!(error instanceof ProviderError)) throw error;
    if (error.kind === "unavailable") {
      throw new AppError("unavailable", `the provider could not be asked about VPS ${ref}; try again later`, { cause: error });
    }
    throw unconfirmed(server, ref, error.kind);
  }
  const known = new Set(addresses.map(canonical));
  if (resolved.some((address) => !known.has(address))) throw unconfirmed(server, ref, "address");
  return { provider, ref };
}
