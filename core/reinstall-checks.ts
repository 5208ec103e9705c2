import { isIP } from "node:net";
import { ProviderError, type VpsProvider } from "../activities/providers/provider.js";
import type { ProviderEndpoints } from "../activities/providers/registry.js";
import { AppError } from "./errors.js";
import { defaultNetworkPolicy, type NetworkPolicy } from "./network-policy.js";
import { type ProviderAccountDeps, providerClientFor } from "./provider-accounts.js";
import type { ServerRow } from "./servers.js";

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

function providerFailure(error: unknown, server: ServerRow): never {
  if (!(error instanceof ProviderError)) throw error;
  switch (error.kind) {
    case "not_found":
      throw refuse(`the provider account has no VPS ${server.providerServerId}`, "provider_server_id");
    case "auth":
      throw refuse("the provider refused the account's credentials: update them with UpdateProviderAccount", "provider_account_id");
    case "invalid":
      throw refuse(`the provider refused the request for VPS ${server.providerServerId}: ${error.message}`, "provider_server_id");
    default:
      throw new AppError("unavailable", `the provider could not be asked about VPS ${server.providerServerId}: ${error.message}`);
  }
}

/**
 * Everything that must hold before a rebuild is requested, checked by the API
 * before it starts the workflow and again by the activity right before the
 * provider call: the rebuilt machine can be logged into, the server names one of
 * its owner's provider accounts and a VPS of that account, and the provider's own
 * record of that VPS holds every address the server's host resolves to. Answers
 * the provider client to rebuild with; throws FailedPrecondition naming why not.
 */
export async function checkReinstallable(deps: ReinstallCheckDeps, server: ServerRow): Promise<{ provider: VpsProvider; ref: string }> {
  const loginProblem = rebuildLoginProblem(server);
  if (loginProblem) throw loginProblem;
  if (!server.providerAccountId) {
    throw refuse("the server names no provider account: set provider_account_id (see ProviderAccountService)", "provider_account_id");
  }
  if (!server.providerServerId) throw refuse("the server has no provider_server_id", "provider_server_id");
  const { provider } = await providerClientFor(deps, server.ownerId, server.providerAccountId);
  const ref = server.providerServerId;
  const record = await provider.getServer(ref).catch((error: unknown) => providerFailure(error, server));
  const known = new Set(record.addresses.map(canonical));
  const resolved = await resolveHost(deps, server);
  const foreign = resolved.filter((address) => !known.has(address));
  if (foreign.length > 0) {
    const via = isIP(server.host) ? "" : ` (resolves to ${resolved.join(", ")})`;
    throw refuse(
      `host ${server.host}${via} is not an address of VPS ${ref} at the provider (${record.addresses.join(", ") || "no address"}): refusing to rebuild a machine the server does not point at`,
      "host",
    );
  }
  return { provider, ref };
}
