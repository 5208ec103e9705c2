import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { setApiUrl } from "./api-url.js";
import { connection } from "./config.js";

export interface Api {
  url: string;
  /**
   * The generated Connect client of one service. Each command imports the descriptors of the services it
   * calls, so a start loads only those (building every service's descriptors cost each call CPU).
   */
  service<S extends DescService>(service: S): Client<S>;
}

/** Connect clients over one transport, with the bearer token on every call. */
export function apiClient(url: string, token: string | undefined): Api {
  const auth: Interceptor = (next) => (req) => {
    if (token) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [auth] });
  const clients = new Map<DescService, unknown>();
  return {
    url,
    service<S extends DescService>(service: S): Client<S> {
      let client = clients.get(service) as Client<S> | undefined;
      if (!client) {
        client = createClient(service, transport);
        clients.set(service, client);
      }
      return client;
    },
  };
}

let current: Api | undefined;

/** The client for this invocation: from AXION_API/AXION_TOKEN or the config file. */
export function api(): Api {
  if (!current) {
    const { api: url, token } = connection();
    current = apiClient(url, token);
    setApiUrl(url);
  }
  return current;
}
