import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, watch, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.js";

const installScript = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "scripts", "hydra", "install.sh");

/** Hydra's admin API, on a unix socket only the test reaches (no port for anyone else on the machine). */
export interface HydraAdmin {
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

export interface TestHydra {
  /** The issuer, `http://127.0.0.1:<port>/`: discovery, authorization, token, revocation and JWKS endpoints. */
  issuerUrl: string;
  admin: HydraAdmin;
  adminSocket: string;
  /** Everything Hydra printed so far. */
  output(): string;
  /** SIGKILL to Hydra's process group; resolves once it has exited; removes its folder. */
  stop(): Promise<void>;
}

export interface HydraOptions {
  /** Where Hydra sends a person to sign in and to consent (the test login app's URLs). */
  loginUrl: string;
  consentUrl: string;
  /** The admin socket's path, known before Hydra starts so the login app can be started first. */
  adminSocket: string;
}

/** A folder for Hydra's admin socket and config, made before the login app and Hydra start. */
export function hydraFolder(): { dir: string; adminSocket: string } {
  const dir = mkdtempSync(join(tmpdir(), "axion-hydra-"));
  return { dir, adminSocket: join(dir, "admin.sock") };
}

/**
 * A real Ory Hydra (built by scripts/hydra/install.sh) with an in-memory database, its public API on
 * a free loopback port (the issuer) and its admin API on a unix socket. Resolves once both listen:
 * the public listener's "HTTPS is disabled" line is printed after its bind, and the admin socket's
 * chmod comes after its listen (ory/x networkx.MakeListener), so neither is sampled.
 */
export async function startHydra(options: HydraOptions): Promise<TestHydra> {
  const binary = execFileSync("bash", [installScript], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  const dir = dirname(options.adminSocket);
  const port = await freePort();
  const issuerUrl = `http://127.0.0.1:${port}/`;
  const configFile = join(dir, "hydra.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      dsn: "memory",
      serve: {
        public: { host: "127.0.0.1", port },
        admin: { host: `unix:${options.adminSocket}` },
        cookies: { same_site_mode: "Lax" },
      },
      urls: {
        self: { issuer: issuerUrl, public: issuerUrl },
        login: options.loginUrl,
        consent: options.consentUrl,
        error: `${options.loginUrl.replace(/\/login$/, "")}/error`,
      },
      secrets: { system: [randomBytes(32).toString("hex")] },
      oauth2: { pkce: { enforced_for_public_clients: true } },
      webfinger: { oidc_discovery: { supported_claims: ["email", "email_verified", "groups"], supported_scope: ["email", "groups"] } },
      log: { level: "info", format: "json", leak_sensitive_values: false },
      sqa: { opt_out: true },
    }),
  );

  const socketListening = new Promise<void>((resolve) => {
    const watcher = watch(dir, (event, name) => {
      if (event === "change" && name === "admin.sock") {
        watcher.close();
        resolve();
      }
    });
  });
  const child = spawn(binary, ["serve", "all", "--dev", "--sqa-opt-out", "--config", configFile], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
  });
  const killOnExit = () => killGroup(child);
  process.once("exit", killOnExit);
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  let output = "";
  let publicListening!: () => void;
  const publicReady = new Promise<void>((r) => {
    publicListening = r;
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => {
      output += `${line}\n`;
      if (line.includes("HTTPS is disabled")) publicListening();
    });
  }
  const failed = exited.then(() => {
    throw new Error(`hydra exited before it listened:\n${output}`);
  });
  await Promise.race([Promise.all([publicReady, socketListening]), failed]);
  failed.catch(() => {});

  return {
    issuerUrl,
    adminSocket: options.adminSocket,
    admin: { request: (method, path, body) => adminRequest(options.adminSocket, method, path, body) },
    output: () => output,
    async stop() {
      killGroup(child);
      if (child.exitCode === null && child.signalCode === null) await exited;
      process.off("exit", killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function killGroup(child: ChildProcess): void {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // the group is already gone
  }
}

/** One admin API call over the unix socket; a status of 400 or more throws with Hydra's answer. */
export function adminRequest<T = unknown>(socketPath: string, method: string, path: string, body?: unknown): Promise<T> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if ((res.statusCode ?? 500) >= 400) reject(new Error(`hydra admin ${method} ${path.split("?")[0]}: ${res.statusCode} ${text}`));
          else resolve((text ? JSON.parse(text) : undefined) as T);
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

/** The OAuth 2.0 client Axion's CLI would be: public (no secret), PKCE, loopback redirect on any port. */
export async function createPublicClient(admin: HydraAdmin): Promise<{ clientId: string; redirectUri: string }> {
  const redirectUri = "http://127.0.0.1/callback";
  const created = await admin.request<{ client_id: string }>("POST", "/admin/clients", {
    client_name: "axion-cli",
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    redirect_uris: [redirectUri],
    scope: "openid offline_access email groups",
  });
  return { clientId: created.client_id, redirectUri };
}
