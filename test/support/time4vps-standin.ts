import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local stand-in for the Time4VPS User API, for tests only. It answers the four calls the
 * provider makes with the shapes documented in docs/providers.md (basic auth, one or more
 * accounts each seeing only its own servers, `{"error": [...]}`,
 * task results with `activated` / `assigned` / `completed` / `results`). Where the real API's
 * behaviour is unknown (HTTP statuses, error texts) it does what that document says is assumed.
 */

export interface StandInServer {
  id: number;
  /** OS codes offered by `GET server/{id}/oses`. */
  oses: string[];
  os?: string;
  ip?: string;
  /** `additional_ip` of the details answer. */
  additionalIps?: string[];
  status?: string;
  /** The user name of the account that owns it (default: `username`); other accounts get 404 for it, as for a missing server. */
  account?: string;
}

export interface Time4vpsStandInOptions {
  username: string;
  password: string;
  servers: StandInServer[];
  /** More client-area accounts, each seeing only the servers whose `account` is its user name. */
  otherAccounts?: { username: string; password: string }[];
  /**
   * How far a task moves per phase (queued → running → completed): by polls (default 1), by time,
   * or "held": running until `releaseTasks()`, so a test acts while the rebuild is surely under way.
   */
  taskPhase?: { polls: number } | { ms: number } | "held";
  /** The status that carries `{"error": ["wronglogin"]}` (default 401). */
  wrongLoginStatus?: number;
}

export interface RecordedRequest {
  method: string;
  /** Relative to the API root, e.g. "server/1/reinstall". */
  path: string;
  /** The basic-auth user name, when one was sent. */
  user?: string;
  body?: unknown;
}

export interface Time4vpsStandIn {
  /** The API root to give the client, ending in "/api/". */
  readonly baseUrl: string;
  readonly requests: RecordedRequest[];
  server(id: number): StandInServer;
  /** The next reinstall task completes with these results instead of reinstalling. */
  failNextTask(results?: string): void;
  /** With `taskPhase: "held"`: every task completes at its next poll. */
  releaseTasks(): void;
  /** The next `count` requests get this status (default 500) and body (default an HTML page), before any other check. */
  failNextRequests(count: number, answer?: { status?: number; body?: unknown }): void;
  /** The next `count` requests are answered only after `ms`. */
  delayNextRequests(count: number, ms: number): void;
  close(): Promise<void>;
}

interface Task {
  id: number;
  serverId: number;
  name: string;
  os: string;
  activated: string;
  createdAt: number;
  polls: number;
  assigned: string;
  completed: string;
  results: string;
  failWith?: string;
}

const iso = (date = new Date()) => date.toISOString().replace(/\.\d{3}Z$/, "+00:00");

export async function startTime4vpsStandIn(options: Time4vpsStandInOptions): Promise<Time4vpsStandIn> {
  const servers = new Map(options.servers.map((s) => [s.id, { status: "Active", ...s }]));
  const tasks = new Map<number, Task>();
  const requests: RecordedRequest[] = [];
  const phase = options.taskPhase ?? { polls: 1 };
  const timers = new Set<NodeJS.Timeout>();
  let nextTaskId = 9000;
  let nextTaskFailure: string | undefined;
  let failures: { count: number; status: number; body?: unknown } = { count: 0, status: 500 };
  let delays = { count: 0, ms: 0 };
  let tasksReleased = false;

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, message: string) => send(res, status, { error: [message] });

  /** Moves a task along as polls or time pass; a completed reinstall changes the server. */
  const advance = (task: Task, polled: boolean) => {
    if (task.completed) return;
    const step =
      phase === "held"
        ? tasksReleased
          ? 2
          : 1
        : "polls" in phase
          ? Math.floor(task.polls / Math.max(phase.polls, 1))
          : Math.floor((Date.now() - task.createdAt) / phase.ms);
    if (polled) task.polls += 1;
    if (step >= 1 && !task.assigned) task.assigned = iso();
    if (step >= 2) {
      task.completed = iso();
      if (task.failWith !== undefined) {
        task.results = task.failWith;
      } else {
        const server = servers.get(task.serverId);
        if (server) server.os = task.os;
        task.results = `Server reinstalled successfully. Username: root Password: Xr${Math.random().toString(36).slice(2, 12)}`;
      }
    }
  };

  const taskView = (task: Task) => ({
    name: task.name,
    activated: task.activated,
    assigned: task.assigned,
    completed: task.completed,
    results: task.results,
  });

  async function handle(req: IncomingMessage, res: ServerResponse, raw: string) {
    const url = new URL(req.url ?? "/", "http://stand-in");
    if (!url.pathname.startsWith("/api/")) return error(res, 404, "Unknown endpoint");
    const path = url.pathname.slice("/api/".length);
    const [user, password] = basicAuth(req.headers.authorization);
    let body: unknown;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
      }
    }
    requests.push({ method: req.method ?? "", path, user, body });

    if (delays.count > 0) {
      delays.count -= 1;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, delays.ms);
        timers.add(timer);
      });
      if (res.destroyed) return;
    }
    if (failures.count > 0) {
      failures.count -= 1;
      if (failures.body !== undefined) return send(res, failures.status, failures.body);
      res.writeHead(failures.status, { "content-type": "text/html" });
      return res.end(`<html><body><h1>${failures.status}</h1></body></html>`);
    }
    const accounts = [{ username: options.username, password: options.password }, ...(options.otherAccounts ?? [])];
    if (!accounts.some((a) => a.username === user && a.password === password))
      return error(res, options.wrongLoginStatus ?? 401, "wronglogin");

    const match = /^server\/(\d+)(?:\/(oses|reinstall|task\/(\d+)))?$/.exec(path);
    if (!match) return error(res, 404, "Unknown endpoint");
    const server = servers.get(Number(match[1]));
    if (!server || (server.account ?? options.username) !== user) return error(res, 404, "Server not found");
    const action = match[2] ?? "";
    const running = [...tasks.values()].find((t) => t.serverId === server.id && !t.completed);
    if (running) advance(running, false);

    if (req.method === "GET" && action === "") {
      const active = [...tasks.values()].find((t) => t.serverId === server.id && !t.completed);
      return send(res, 200, {
        domain: `vps${server.id}.stand-in.test`,
        label: "",
        status: server.status,
        os: server.os ?? "",
        ip: server.ip ?? "",
        additional_ip: server.additionalIps ?? [],
        dns_servers: null,
        active_task: active ? { name: active.name, activated: active.activated } : null,
        last_tasks: null,
      });
    }
    if (req.method === "GET" && action === "oses") {
      return send(
        res,
        200,
        server.oses.map((os) => ({ os, title: os })),
      );
    }
    if (req.method === "GET" && match[3]) {
      const task = tasks.get(Number(match[3]));
      if (!task || task.serverId !== server.id) return error(res, 400, "Invalid task ID");
      advance(task, true);
      return send(res, 200, taskView(task));
    }
    if (req.method === "POST" && action === "reinstall") {
      const input = (typeof body === "object" && body !== null ? body : {}) as { os?: unknown; ssh_key?: unknown; script?: unknown };
      if (typeof input.os !== "string" || !server.oses.includes(input.os)) return error(res, 400, "Invalid OS");
      if (input.ssh_key != null && typeof input.ssh_key !== "string") return error(res, 400, "Invalid SSH key");
      if (input.script != null && !Number.isInteger(input.script)) return error(res, 400, "Invalid init script");
      if (running && !running.completed) return error(res, 409, "Server has an active task");
      const task: Task = {
        id: nextTaskId++,
        serverId: server.id,
        name: "server_recreate",
        os: input.os,
        activated: iso(),
        createdAt: Date.now(),
        polls: 0,
        assigned: "",
        completed: "",
        results: "",
        failWith: nextTaskFailure,
      };
      nextTaskFailure = undefined;
      tasks.set(task.id, task);
      return send(res, 200, { task_id: task.id });
    }
    return error(res, 404, "Unknown endpoint");
  }

  const http = createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      raw += chunk;
    });
    req.on("end", () => {
      handle(req, res, raw).catch((err: unknown) => {
        if (!res.headersSent) error(res, 500, String(err));
      });
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const { port } = http.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/api/`,
    requests,
    server(id) {
      const server = servers.get(id);
      if (!server) throw new Error(`no stand-in server ${id}`);
      return server;
    },
    failNextTask(results = "Error: image deployment failed") {
      nextTaskFailure = results;
    },
    releaseTasks() {
      tasksReleased = true;
    },
    failNextRequests(count, answer = {}) {
      failures = { count, status: answer.status ?? 500, body: answer.body };
    },
    delayNextRequests(count, ms) {
      delays = { count, ms };
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

function basicAuth(header: string | undefined): [string | undefined, string | undefined] {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? "");
  if (!match?.[1]) return [undefined, undefined];
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? [decoded, undefined] : [decoded.slice(0, colon), decoded.slice(colon + 1)];
}
