import { ProviderError, type ProviderErrorKind, type ProviderTaskState, type ReinstallRequest, type VpsProvider } from "./provider.js";

/**
 * Time4VPS User API client, shaped after Time4VPS's own PHP library (time4vps/time4vps-lib) and
 * the API's Swagger document; docs/providers.md lists what is known and what is assumed.
 * One HTTP request per method: retries and waiting belong to the workflow.
 */

export const TIME4VPS_BASE_URL = "https://billing.time4vps.com/api/";

export interface Time4vpsOptions {
  /** The API root, e.g. TIME4VPS_BASE_URL. */
  baseUrl: string;
  /** The client area login (an e-mail address) and its password: the API uses HTTP basic auth. */
  username: string;
  password: string;
  /** Per request, from connecting to the last byte of the answer. */
  timeoutMs: number;
}

/** `GET server/{id}`: the fields used here (the answer has many more). */
interface ServerDetails {
  status?: unknown;
  ip?: unknown;
  /** A list of IPv4 address strings (Swagger "Server Details"). */
  additional_ip?: unknown;
  os?: unknown;
}

/** `GET server/{id}/task/{task_id}`: dates are ISO 8601, empty strings until they happen. */
interface TaskResult {
  name?: unknown;
  activated?: unknown;
  assigned?: unknown;
  completed?: unknown;
  results?: unknown;
}

// The PHP library refuses ids that are not positive integers; here they also keep paths clean.
const positiveId = /^[1-9][0-9]{0,18}$/;
const osCode = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function createTime4vpsProvider(options: Time4vpsOptions): VpsProvider {
  const base = parseBaseUrl(options.baseUrl);
  const authorization = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString("base64")}`;
  const accountSecrets = [options.password, authorization.slice("Basic ".length)];

  async function call(method: "GET" | "POST", path: string, body?: Record<string, unknown>, secrets: string[] = []): Promise<unknown> {
    const what = `${method} ${path}`;
    const scrub = (text: string) => redact(text, [...accountSecrets, ...secrets]);
    let status: number;
    let text: string;
    try {
      const response = await fetch(new URL(path, base), {
        method,
        headers: {
          authorization,
          accept: "application/json",
          ...(body ? { "content-type": "application/json" } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      throw transportError(what, error, options.timeoutMs);
    }

    const json = parseJson(text);
    const apiError = apiErrorOf(json);
    if (status < 200 || status > 299 || apiError !== undefined) {
      const kind = classify(status, apiError);
      // Scrubbed before truncating, so that no partial secret survives the cut.
      const reason = apiError === "wronglogin" ? "the username or password is wrong (wronglogin)" : truncate(scrub(apiError ?? ""), 200);
      throw new ProviderError(`Time4VPS ${what}: HTTP ${status}${reason ? `: ${reason}` : ""}`, kind, { status });
    }
    if (json === undefined) throw new ProviderError(`Time4VPS ${what}: the answer is not JSON`, "unavailable", { status });
    return json;
  }

  return {
    name: "time4vps",

    async listOperatingSystems(serverRef) {
      const id = checkId("serverRef", serverRef);
      const answer = await call("GET", `server/${id}/oses`);
      if (!Array.isArray(answer)) throw unexpected(`GET server/${id}/oses`, "a list of { os, title }");
      return answer.map((entry) => (entry as { os?: unknown })?.os).filter((os): os is string => typeof os === "string");
    },

    async getServer(serverRef) {
      const id = checkId("serverRef", serverRef);
      const answer = await call("GET", `server/${id}`);
      if (!isRecord(answer)) throw unexpected(`GET server/${id}`, "server details");
      const details = answer as ServerDetails;
      const ip = nonEmptyString(details.ip);
      const additional = Array.isArray(details.additional_ip) ? details.additional_ip.map(nonEmptyString) : [];
      return {
        id,
        status: typeof details.status === "string" ? details.status : "unknown",
        ip,
        addresses: [ip, ...additional].filter((a): a is string => a !== undefined),
        os: nonEmptyString(details.os),
      };
    },

    async reinstall(serverRef, request: ReinstallRequest) {
      const id = checkId("serverRef", serverRef);
      if (typeof request.os !== "string" || !osCode.test(request.os)) throw invalid("os must be an OS code such as ubuntu-22.04-x86_64");
      if (request.sshKey !== undefined && (request.sshKey.length > 16384 || /[\r\n\0]/.test(request.sshKey) || !request.sshKey.trim())) {
        throw invalid("sshKey must be one public key on one line");
      }
      const script = request.script === undefined ? null : Number(checkId("script", request.script));
      // The PHP library always sends all three fields, null when unset.
      const body = { os: request.os, ssh_key: request.sshKey ?? null, script };
      const answer = await call("POST", `server/${id}/reinstall`, body, keyParts(request.sshKey));
      const taskId = isRecord(answer) ? answer.task_id : undefined;
      if ((typeof taskId !== "number" && typeof taskId !== "string") || !positiveId.test(String(taskId))) {
        throw unexpected(`POST server/${id}/reinstall`, "{ task_id }");
      }
      return { taskId: String(taskId) };
    },

    async getTask(serverRef, taskId) {
      const id = checkId("serverRef", serverRef);
      const task = checkId("taskId", taskId);
      const answer = await call("GET", `server/${id}/task/${task}`);
      if (!isRecord(answer)) throw unexpected(`GET server/${id}/task/${task}`, "a task result");
      return describeTask(answer as TaskResult, accountSecrets);
    },
  };
}

/** Maps the task result's dates to a state; Time4VPS has no status field (see docs/providers.md). */
function describeTask(task: TaskResult, secrets: string[]): { state: ProviderTaskState; detail: string } {
  const name = nonEmptyString(task.name) ?? "task";
  const completed = nonEmptyString(task.completed);
  const assigned = nonEmptyString(task.assigned);
  if (completed) {
    // Reinstall results carry the new root password ("Password: ..."), which must not reach Temporal.
    const results = redact(String(task.results ?? ""), secrets).replace(/(password\s*[:=]\s*)\S+/gi, "$1[redacted]");
    const state = /\b(error|failed|failure|unsuccessful)\b/i.test(results) ? "failed" : "succeeded";
    return { state, detail: `${name} completed at ${completed}${results.trim() ? `: ${truncate(results.trim(), 300)}` : ""}` };
  }
  if (assigned) return { state: "running", detail: `${name} running since ${assigned}` };
  const activated = nonEmptyString(task.activated);
  return { state: "pending", detail: `${name} queued${activated ? ` since ${activated}` : ""}` };
}

function classify(status: number, apiError: string | undefined): ProviderErrorKind {
  if (apiError === "wronglogin" || status === 401 || status === 403) return "auth";
  // The PHP library turns this message into InvalidTaskException.
  if (apiError === "Invalid task ID" || status === 404) return "not_found";
  if (status >= 500 || status === 408 || status === 409 || status === 423 || status === 429) return "unavailable";
  return "invalid";
}

function transportError(what: string, error: unknown, timeoutMs: number): ProviderError {
  const name = (error as { name?: unknown })?.name;
  if (name === "TimeoutError")
    return new ProviderError(`Time4VPS ${what}: no answer within ${timeoutMs} ms`, "unavailable", { cause: error });
  if (name === "AbortError") return new ProviderError(`Time4VPS ${what}: request aborted`, "unavailable", { cause: error });
  const code = ((error as { cause?: { code?: unknown } })?.cause?.code as string | undefined) ?? "";
  return new ProviderError(`Time4VPS ${what}: network error${code ? ` (${code})` : ""}`, "unavailable", { cause: error });
}

/** The API reports failures as `{"error": ["message", ...]}`; the PHP library reads the first entry. */
function apiErrorOf(json: unknown): string | undefined {
  if (!isRecord(json) || !("error" in json)) return undefined;
  const errors = json.error;
  const first = Array.isArray(errors) ? errors[0] : errors;
  if (typeof first === "string" && first) return first;
  return JSON.stringify(errors ?? null);
}

function parseBaseUrl(baseUrl: string): URL {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw invalid("baseUrl is not a URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw invalid("baseUrl must be http(s)");
  if (url.username || url.password) throw invalid("baseUrl must not carry credentials; pass username and password");
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

function checkId(field: string, value: unknown): string {
  if (typeof value !== "string" || !positiveId.test(value)) throw invalid(`${field} must be a positive integer in decimal digits`);
  return value;
}

const invalid = (message: string) => new ProviderError(message, "invalid");
const unexpected = (what: string, expected: string) =>
  new ProviderError(`Time4VPS ${what}: unexpected answer, expected ${expected}`, "unavailable");

/** A key is secret enough to keep out of messages; an API may echo it whole or in part. */
function keyParts(sshKey: string | undefined): string[] {
  if (!sshKey) return [];
  return [sshKey, ...sshKey.split(/\s+/).filter((part) => part.length >= 16)];
}

function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join("[redacted]");
  return out;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const nonEmptyString = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined);
const truncate = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);
