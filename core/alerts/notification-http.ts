import { createHmac } from "node:crypto";
import type { LookupAddress } from "node:dns";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import { type NetworkPolicy, RefusedByPolicy, resolveAllowedAddress } from "../security/network-policy.js";
import { urlHost } from "./notifications.js";

/** What a receiver answered; `error` never quotes the URL (a Slack URL's path is its credential). */
export interface PostOutcome {
  delivered: boolean;
  httpStatus: number;
  error?: string;
}

/** More of a response body is never read: receivers' answers only matter by status. */
export const RESPONSE_BODY_CAP_BYTES = 4096;

/**
 * The webhook signature: HMAC-SHA256 with the channel secret over `<timestamp>.<body>`, so a captured
 * request cannot be replayed with a new timestamp. Receivers recompute it and refuse old timestamps.
 */
export function signatureOf(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

export function signedHeaders(secret: string, body: string, now = new Date()): Record<string, string> {
  const timestamp = String(Math.floor(now.getTime() / 1000));
  return { "x-axion-timestamp": timestamp, "x-axion-signature": signatureOf(secret, timestamp, body) };
}

/**
 * POSTs a JSON body to a notification URL under the network policy of SSH targets: the host is
 * resolved once, every address checked, and the connection goes to the checked address (a
 * rebinding answer cannot switch it). Redirects are not followed, the whole exchange has a
 * deadline, and at most RESPONSE_BODY_CAP_BYTES of the answer are read.
 */
export async function postNotification(
  policy: NetworkPolicy,
  target: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  /** Whose request: the URL's name is resolved as this owner's lookup (core/security/name-resolution.ts). */
  owner?: string,
): Promise<PostOutcome> {
  const url = new URL(target);
  const started = Date.now();
  let address: string;
  try {
    address = await resolveAllowedAddress(policy, urlHost(url), timeoutMs, owner);
  } catch (error) {
    if (error instanceof RefusedByPolicy) return { delivered: false, httpStatus: 0, error: error.message };
    return { delivered: false, httpStatus: 0, error: `cannot resolve ${url.hostname} (${(error as { code?: string }).code ?? "error"})` };
  }
  const family = isIP(address);
  const pinned = (_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options?.all) callback(null, [{ address, family } satisfies LookupAddress]);
    else callback(null, address, family);
  };
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const remaining = Math.max(1, timeoutMs - (Date.now() - started));
  return new Promise<PostOutcome>((resolve) => {
    let settled = false;
    const finish = (outcome: PostOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      req.destroy();
      resolve(outcome);
    };
    const req = send(
      url,
      {
        method: "POST",
        agent: false,
        lookup: pinned as never,
        headers: {
          ...headers,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "user-agent": "axion-infra-notifications",
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on("data", (chunk: Buffer) => {
          read += chunk.length;
          if (read >= RESPONSE_BODY_CAP_BYTES) res.destroy();
        });
        const done = () => {
          if (status >= 200 && status < 300) finish({ delivered: true, httpStatus: status });
          else if (status >= 300 && status < 400)
            finish({ delivered: false, httpStatus: status, error: `redirect (HTTP ${status}) not followed` });
          else finish({ delivered: false, httpStatus: status, error: `receiver answered HTTP ${status}` });
        };
        res.on("end", done);
        res.on("close", done);
        res.on("error", done);
      },
    );
    const deadline = setTimeout(() => finish({ delivered: false, httpStatus: 0, error: `no answer within ${timeoutMs} ms` }), remaining);
    req.on("error", (error: NodeJS.ErrnoException) =>
      finish({
        delivered: false,
        httpStatus: 0,
        error: `cannot reach ${url.hostname}:${url.port || (url.protocol === "https:" ? 443 : 80)} (${error.code ?? error.name})`,
      }),
    );
    req.end(body);
  });
}
