import { createReadStream, readFileSync, statSync } from "node:fs";
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { extname, join, normalize, sep } from "node:path";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/**
 * Every console answer carries these: scripts, styles, images and calls only from this origin, no inline
 * script or style, never framed, no <base>, no plugins. React sets `style` through the CSSOM, which the
 * policy allows; a `style="…"` attribute in markup would be refused.
 */
export const consoleSecurityHeaders: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
};

/** Only these kinds of file are served, each with its type; anything else in the folder is not. */
const contentTypes: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

/** A Connect/gRPC path: `/<package>.<Service>/<Method>`; such paths are the API's, never the console's. */
const rpcPath = /^\/[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+\/[A-Za-z_][A-Za-z0-9_]*$/;

/** Vite names built assets `name-<hash>.ext` under assets/: their content never changes under that name. */
const hashedAsset = /^\/assets\/[^/]+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;

/**
 * The built console from `dir`: files by path, index.html for any other GET that is not an RPC path (the
 * console's own routes), each with the security headers. Returns whether it answered; RPCs, /healthz
 * and /metrics never reach it.
 */
export function consoleHandler(dir: string): (req: NodeRequest, res: NodeResponse) => boolean {
  const root = normalize(dir + sep);
  // Read on each answer (it is small): a rebuild while the process runs is served at once.
  const indexHtml = (): Buffer | undefined => {
    try {
      return readFileSync(join(root, "index.html"));
    } catch {
      return undefined;
    }
  };
  const send = (res: NodeResponse, status: number, headers: Record<string, string>, body?: Buffer) => {
    (res as http.ServerResponse).writeHead(status, { ...consoleSecurityHeaders, ...headers });
    if (body) res.end(body);
    else res.end();
  };

  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://console").pathname);
    } catch {
      return false;
    }
    if (rpcPath.test(path)) return false;
    if (path.includes("\0")) {
      send(res, 400, { "content-type": "text/plain; charset=utf-8" }, Buffer.from("bad path\n"));
      return true;
    }
    const file = normalize(join(root, path));
    const type = contentTypes[extname(file)];
    if (file.startsWith(root) && type && path !== "/index.html") {
      let size: number | undefined;
      try {
        const s = statSync(file);
        if (s.isFile()) size = s.size;
      } catch {}
      if (size !== undefined) {
        const cache = hashedAsset.test(path) ? "public, max-age=31536000, immutable" : "no-cache";
        (res as http.ServerResponse).writeHead(200, {
          ...consoleSecurityHeaders,
          "content-type": type,
          "content-length": String(size),
          "cache-control": cache,
        });
        if (req.method === "HEAD") res.end();
        else
          createReadStream(file)
            .on("error", () => res.destroy())
            .pipe(res as http.ServerResponse);
        return true;
      }
      // A missing asset is a 404, not the page: a script tag must not receive HTML.
      if (path.startsWith("/assets/")) {
        send(res, 404, { "content-type": "text/plain; charset=utf-8" }, Buffer.from("not found\n"));
        return true;
      }
    }
    const page = indexHtml();
    if (!page) return false;
    send(res, 200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" }, req.method === "HEAD" ? undefined : page);
    return true;
  };
}
