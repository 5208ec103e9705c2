import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Connection } from "@temporalio/client";
import type { Database } from "../db/client.js";
import { migrationsCurrent } from "../db/migration-state.js";

/** What a readiness answer may name: never an address, a message or a secret. */
export type NotReady = "draining" | "database" | "migrations" | "temporal";

export interface Readiness {
  /** The dependencies that do not answer (empty: ready). Answers within ~`cacheMs` are shared. */
  check(): Promise<NotReady[]>;
  /** From now on not ready ("draining"), whatever the dependencies say. */
  drain(): void;
  readonly draining: boolean;
}

const CHECK_TIMEOUT_MS = 2000;

function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Ready when the database answers and holds this code's migrations, and Temporal answers (when
 * the process uses it). One check runs at a time and its answer serves every probe for `cacheMs`,
 * so a load balancer's probes cost nothing.
 */
export function createReadiness(deps: { db: Database; temporal?: Connection; cacheMs?: number }): Readiness {
  const cacheMs = deps.cacheMs ?? 1000;
  let draining = false;
  let last: { at: number; answer: Promise<NotReady[]> } | undefined;

  async function probe(): Promise<NotReady[]> {
    const [database, temporal] = await Promise.all([
      within(CHECK_TIMEOUT_MS, migrationsCurrent(deps.db)).then(
        (current): NotReady[] => (current ? [] : ["migrations"]),
        (): NotReady[] => ["database"],
      ),
      deps.temporal
        ? within(CHECK_TIMEOUT_MS, deps.temporal.healthService.check({})).then(
            (): NotReady[] => [],
            (): NotReady[] => ["temporal"],
          )
        : ([] as NotReady[]),
    ]);
    return [...database, ...temporal];
  }

  return {
    get draining() {
      return draining;
    },
    drain() {
      draining = true;
    },
    async check() {
      if (draining) return ["draining"];
      const now = Date.now();
      if (!last || now - last.at >= cacheMs) last = { at: now, answer: probe() };
      const answer = await last.answer;
      return draining ? ["draining"] : answer;
    },
  };
}

type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;

/** `GET`/`HEAD /readyz`: 200 `{"status":"ready"}`, or 503 `{"status":"not ready","notReady":[...]}`. */
export function readinessHandler(readiness: Readiness): (req: AnyRequest, res: AnyResponse) => void {
  return (_req, res) => {
    readiness.check().then((notReady) => {
      const body = notReady.length === 0 ? { status: "ready" } : { status: "not ready", notReady };
      (res as ServerResponse).writeHead(notReady.length === 0 ? 200 : 503, {
        "content-type": "application/json",
        "cache-control": "no-store",
      });
      res.end(JSON.stringify(body));
    });
  };
}
