import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApplicationFailure } from "@temporalio/common";
import { issueAgentToken } from "../core/agents/agent-tokens.js";
import { agentRegisteredSince, databaseNow, getAgent } from "../core/agents/agents.js";
import type { StepResult } from "../workflows/definitions.js";
import type { ActivityDeps } from "./deps.js";
import { type AgentState, agentStateOf } from "./host-facts/agent-state.js";
import { agentArchOf } from "./host-facts/arch.js";
import { readHostAnswer } from "./host-facts/read.js";
import { homeOf } from "./host-facts/resources.js";
import { agentInstallScript, agentStateScript, parseStepOutput } from "./host-scripts.js";
import { withServerSession } from "./server-access.js";
import { heartbeating, runRemoteStep } from "./ssh/remote-step.js";
import type { SshSession } from "./ssh/session.js";

const checksums = new Map<string, string>();
function sha256Of(path: string): string {
  let sum = checksums.get(path);
  if (!sum) {
    sum = createHash("sha256").update(readFileSync(path)).digest("hex");
    checksums.set(path, sum);
  }
  return sum;
}

export interface AgentStepResult extends StepResult {
  skipped?: boolean;
  /** Registration must be newer than this for the step to be done (ISO time, the database's clock). */
  installedAt?: string;
}

export const AGENT_UNCONFIGURED = "agent installation is not configured (AGENT_API_URL)";

const versions = new Map<string, string>();
/** The version the binary reports (`-version`) when it runs here, else its checksum's head: how a plan names it. */
function versionOf(binary: string, sha256: string): string {
  let version = versions.get(binary);
  if (version === undefined) {
    try {
      version = execFileSync(binary, ["-version"], { encoding: "utf8", timeout: 2000, stdio: ["ignore", "pipe", "ignore"] })
        .trim()
        .replace(/^axion-agent\s+/, "");
    } catch {
      version = "";
    }
    versions.set(binary, version);
  }
  return version || `sha256:${sha256.slice(0, 12)}`;
}

/** What the agent step finds on a host (read-only): the agent check of plans and of the install itself. */
export interface AgentInspection {
  binary: string;
  sha256: string;
  version: string;
  /** "ok", or what differs: "not installed", "binary differs", "service not running", "api url differs". */
  state: AgentState;
  registered: boolean;
}

export async function inspectAgent(deps: ActivityDeps, session: SshSession, serverId: string): Promise<AgentInspection> {
  const agent = deps.agent;
  if (!agent) throw new Error(AGENT_UNCONFIGURED);
  // The host's answer selects a local file only through the allow-list: a build name, never a path.
  const binary = join(agent.binaryDir, `axion-agent-linux-${agentArchOf(await readHostAnswer(session, "uname -m"))}`);
  if (!existsSync(binary)) {
    throw ApplicationFailure.nonRetryable(`no agent binary at ${binary}: run scripts/build-agent.sh`, "AgentBinaryMissing");
  }
  const sha256 = sha256Of(binary);
  const state = agentStateOf(
    (await runRemoteStep(session, agentStateScript(sha256, agent.apiUrl), { timeoutMs: 30_000, step: "agent_state" })).stdout,
  );
  const registered = Boolean((await getAgent(deps.db, serverId))?.registeredAt);
  return { binary, sha256, version: versionOf(binary, sha256), state, registered };
}

/** Whether the install would be skipped: the wanted agent runs and has registered (a forced install always runs). */
export const agentCurrent = (found: AgentInspection, force: boolean): boolean => !force && found.state === "ok" && found.registered;

/** A plan's words for the install `inspectAgent` found necessary. */
export function agentChange(found: AgentInspection, force: boolean): string {
  if (found.state === "ok" && found.registered) return `reinstall axion-agent ${found.version}${force ? " (rotates its token)" : ""}`;
  return `install axion-agent ${found.version} (${found.state === "ok" ? "not registered" : found.state})`;
}

/** Agent activities: install (upload, verify, configure, start) and the registration check the workflow polls. */
export function createAgentActivities(deps: ActivityDeps) {
  return {
    async installAgent(input: { serverId: string; force: boolean }): Promise<AgentStepResult> {
      const agent = deps.agent;
      if (!agent) return { changed: false, skipped: true, detail: AGENT_UNCONFIGURED };
      return heartbeating(() =>
        withServerSession(deps, input.serverId, async (session) => {
          const found = await inspectAgent(deps, session, input.serverId);
          if (agentCurrent(found, input.force)) return { changed: false, detail: "agent installed, running and registered" };
          const { binary, sha256 } = found;
          // Pending until the new agent first uses it: if anything below fails, the running agent keeps its token.
          const token = await issueAgentToken(deps.db, input.serverId, { cipher: deps.cipher, pending: true });
          const home = homeOf(await readHostAnswer(session, "HOME"));
          const suffix = randomBytes(6).toString("hex");
          const remoteBinary = `${home}/.axion-agent-${suffix}`;
          const remoteConfig = `${home}/.axion-agent-config-${suffix}.json`;
          const local = mkdtempSync(join(tmpdir(), "axion-agent-"));
          try {
            const configFile = join(local, "config.json");
            const config = {
              api_url: agent.apiUrl,
              server_id: input.serverId,
              token,
              heartbeat_interval_seconds: agent.heartbeatIntervalSeconds,
            };
            writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
            const installedAt = await databaseNow(deps.db);
            await heartbeating(async () => {
              await session.upload(binary, remoteBinary, 0o700);
              await session.upload(configFile, remoteConfig, 0o600);
            });
            const { stdout } = await runRemoteStep(session, agentInstallScript(remoteBinary, remoteConfig, sha256), {
              timeoutMs: 120_000,
              step: "agent_install",
            });
            const { changed, detail } = parseStepOutput(stdout, "agent_install");
            return { changed, detail, installedAt };
          } finally {
            rmSync(local, { recursive: true, force: true });
          }
        }),
      );
    },

    /** Has the agent registered since `since`? Polled by the workflow with durable timers; compared with the database's clock. */
    async agentRegisteredSince(input: { serverId: string; since: string }): Promise<boolean> {
      return agentRegisteredSince(deps.db, input.serverId, input.since);
    },
  };
}
