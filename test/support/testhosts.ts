import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

/** Node side of scripts/testhosts: real Debian hosts in network namespaces with systemd and sshd. */

export interface TestHost {
  name: string;
  ip: string;
  port: number;
  state: string;
  user: string;
  root: string;
  hostKeys: Record<string, string | null>;
}

export interface Fleet {
  prefix: string;
  gateway: string;
  privateKeyPath: string;
  privateKey: string;
  hosts: TestHost[];
}

const scripts = join(process.cwd(), "scripts", "testhosts");
const stateDir = process.env.AXION_TESTHOST_STATE ?? "/var/lib/axion-testhosts";

export function buildImage(): void {
  execFileSync("bash", [join(scripts, "build-image.sh")], { stdio: ["ignore", "ignore", "inherit"], timeout: 15 * 60_000 });
}

/**
 * `AXION_TESTHOST_TAG` (a few [a-z0-9]) is appended to every prefix, so that checkouts running the
 * same test file at once on one machine get fleets of their own.
 */
function tagged(prefix: string): string {
  const tag = process.env.AXION_TESTHOST_TAG ?? "";
  if (!/^[a-z0-9]{0,4}$/.test(tag)) throw new Error("AXION_TESTHOST_TAG must be at most 4 of [a-z0-9]");
  return prefix + tag;
}

/**
 * `upHosts` extra arguments for hosts booted with docker.io installed and running: for tests where
 * Docker is not what is checked (the install is a minute of dpkg on a busy machine).
 */
export const DOCKER_PREINSTALLED = ["--docker-preinstalled"];

export function upHosts(untaggedPrefix: string, count: number, state = "fresh", extra: string[] = []): Fleet {
  const prefix = tagged(untaggedPrefix);
  execFileSync("bash", [join(scripts, "up.sh"), String(count), "--prefix", prefix, "--state", state, ...extra], {
    stdio: ["ignore", "ignore", "inherit"],
    timeout: 10 * 60_000,
  });
  return readFleet(prefix);
}

function readFleet(prefix: string): Fleet {
  const inventory = JSON.parse(readFileSync(join(stateDir, `${prefix}.json`), "utf8"));
  return { ...inventory, privateKey: readFileSync(inventory.privateKeyPath, "utf8") };
}

export interface FleetSpec {
  prefix: string;
  count: number;
  state?: string;
  extra?: string[];
}

/** Several fleets booted at once (up.sh runs of different prefixes never collide): a file waits for one boot, not one per fleet. */
export async function upFleets<K extends string>(specs: Record<K, FleetSpec>): Promise<Record<K, Fleet>> {
  const up = async ({ prefix: untagged, count, state = "fresh", extra = [] }: FleetSpec): Promise<Fleet> => {
    const prefix = tagged(untagged);
    const child = promisify(execFile)("bash", [join(scripts, "up.sh"), String(count), "--prefix", prefix, "--state", state, ...extra], {
      timeout: 10 * 60_000,
    });
    child.child.stderr?.pipe(process.stderr);
    await child;
    return readFleet(prefix);
  };
  const keys = Object.keys(specs) as K[];
  const fleets = await Promise.all(keys.map((k) => up(specs[k])));
  return Object.fromEntries(keys.map((k, i) => [k, fleets[i]])) as Record<K, Fleet>;
}

export function downHosts(prefix: string): void {
  execFileSync("bash", [join(scripts, "down.sh"), "--prefix", tagged(prefix), "--kill"], {
    stdio: ["ignore", "ignore", "inherit"],
    timeout: 5 * 60_000,
  });
}

/** Runs a command inside a host (as root, in all its namespaces); returns stdout. */
export function hostExec(name: string, command: string): string {
  return execFileSync("bash", [join(scripts, "exec.sh"), name, "sh", "-c", command], { encoding: "utf8", timeout: 120_000 });
}

export function regenHostKey(name: string): void {
  execFileSync("bash", [join(scripts, "regen-hostkey.sh"), name], { stdio: ["ignore", "ignore", "inherit"], timeout: 60_000 });
}
