import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

/**
 * The console's one way to the API: the generated descriptors over Connect (binary) to this origin.
 * The token lives only in this closure, in memory: never in a URL, Web Storage or a cookie, so a
 * reload asks for it again and no other tab, extension page or later visitor can read it back.
 */
export function apiTransport(token: string): Transport {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  return createConnectTransport({ baseUrl: window.location.origin, useBinaryFormat: true, interceptors: [bearer] });
}
