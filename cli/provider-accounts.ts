import { type ProviderAccount, ProviderAccountService, ProviderKind } from "../gen/axion/infrastructure/v1/provider_account_service_pb.js";
import type { Api } from "./client.js";
import { enumName } from "./output.js";
import { byIdOrList, listAll } from "./resolve.js";

/** time4vps for PROVIDER_KIND_TIME4VPS: the kind as `--kind` takes it and the tables show it. */
export const kindName = (kind: ProviderKind) => enumName(ProviderKind, kind, "PROVIDER_KIND");

export const kindNames = Object.keys(ProviderKind)
  .filter((k) => Number.isNaN(Number(k)) && k !== "UNSPECIFIED")
  .map((k) => k.toLowerCase());

export const kindFromName = (name: string) => ProviderKind[name.toUpperCase() as keyof typeof ProviderKind] as ProviderKind;

export const allProviderAccounts = (api: Api) =>
  listAll(async (pageToken) => {
    const r = await api.service(ProviderAccountService).listProviderAccounts({ pageSize: 500, pageToken });
    return { items: r.providerAccounts, next: r.nextPageToken };
  });

export const resolveProviderAccount = (api: Api, handle: string): Promise<ProviderAccount> =>
  byIdOrList(
    "provider account",
    handle,
    async (id) => (await api.service(ProviderAccountService).getProviderAccount({ id })).providerAccount,
    () => allProviderAccounts(api),
  );
