import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { CliError } from "./errors.js";

export interface StoredConfig {
  api?: string;
  token?: string;
}

/** `$XDG_CONFIG_HOME/axion/config.json`, else `~/.config/axion/config.json`. */
export function configPath(env = process.env): string {
  const base = env.XDG_CONFIG_HOME?.trim() || join(homedir(), ".config");
  return join(base, "axion", "config.json");
}

export function readConfig(path = configPath()): StoredConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return {};
  }
  try {
    const parsed = JSON.parse(text) as StoredConfig;
    return {
      api: typeof parsed.api === "string" ? parsed.api : undefined,
      token: typeof parsed.token === "string" ? parsed.token : undefined,
    };
  } catch {
    throw CliError.usage(`${path} is not valid JSON: fix or delete it, then run axion login`);
  }
}

/** Written owner-only (0600, its folder 0700): the file holds a bearer token. */
export function writeConfig(config: StoredConfig, path = configPath()): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Where to call and with which token: AXION_API / AXION_TOKEN override the config file. */
export function connection(env = process.env): { api: string; token?: string } {
  const stored = readConfig();
  const api = env.AXION_API?.trim() || stored.api;
  if (!api) throw CliError.usage("no API configured: run axion login --api URL (or set AXION_API)");
  return { api: normaliseApi(api), token: env.AXION_TOKEN?.trim() || stored.token };
}

export function normaliseApi(api: string): string {
  let url: URL;
  try {
    url = new URL(api);
  } catch {
    throw CliError.usage(`--api must be a URL like http://127.0.0.1:8080, not "${api.slice(0, 80)}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw CliError.usage("--api must be an http:// or https:// URL");
  return url.toString().replace(/\/+$/, "");
}
