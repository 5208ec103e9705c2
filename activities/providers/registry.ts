import type { ProviderKind } from "../../core/kernel/kinds.js";
import type { VpsProvider } from "./provider.js";
import { createTime4vpsProvider } from "./time4vps.js";

/**
 * Where each provider's API is, service-wide (TIME4VPS_API_URL). Accounts carry
 * credentials only, never an address: an owner cannot point the worker at another URL.
 */
export interface ProviderEndpoints {
  time4vps: { baseUrl: string; timeoutMs: number };
}

export interface ProviderCredentials {
  username: string;
  password: string;
}

/** A client for one provider account. Built per use from credentials decrypted in this process. */
export function connectProvider(endpoints: ProviderEndpoints, kind: ProviderKind, credentials: ProviderCredentials): VpsProvider {
  switch (kind) {
    case "time4vps":
      return createTime4vpsProvider({ ...endpoints.time4vps, ...credentials });
  }
}
