import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApplicationFailure } from "@temporalio/common";
import { issueAgentToken } from "../core/agent-tokens.js";
import { agentRegisteredSince, databaseNow, getAgent } from "../core/agents.js";
import type { StepResult } from "../workflows/definitions.js";
import type { ActivityDeps } from "./deps.js";
import { agentInstallScript, agentStateScript, parseStepOutput } from "./host-scripts.js";
import { withServerSession } from "./server-access.js";
import { heartbeating, runRemoteStep } from "./ssh/remote-step.js";
import { sh } from "./ssh/shell.js";

const archNames: Record<string, string> = { x86_64: "amd64", aarch64: "arm64", amd64: "amd64", arm64: "arm64" };

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

/** Agent activities: install (upload, verify, configure, start) and the registration check the workflow polls. */
export function createAgentActivities(deps: ActivityDeps) {
  return {
    async installAgent(input: { serverId: string; force: boolean }): Promise<AgentStepResult> {
      const agent = deps.agent;
      if (!agent) return { changed: false, skipped: true, detail: "agent installation is not configured (AGENT_API_URL)" };
      return heartbeating(() =>
        withServerSession(deps, input.serverId, async (session) => {
          const machine = (await runRemoteStep(session, sh`uname -m`, { root: false, step: "machine" })).stdout.trim();
          const binary = join(agent.binaryDir, `axion-agent-linux-${archNames[machine] ?? machine}`);
          if (!existsSync(binary)) {
            throw ApplicationFailure.nonRetryable(
              `no agent binary for ${machine} at ${binary}: run scripts/build-agent.sh`,
              "AgentBinaryMissing",
            );
          }
          const sha256 = sha256Of(binary);
          if (!input.force) {
            const state = (
              await runRemoteStep(session, agentStateScript(sha256, agent.apiUrl), { timeoutMs: 30_000, step: "agent_state" })
            ).stdout.trim();
            const registered = await getAgent(deps.db, input.serverId);
            if (state === "ok" && registered?.registeredAt) return { changed: false, detail: "agent installed, running and registered" };
          }
          // Pending until the new agent first uses it: if anything below fails, the running agent keeps its token.
          const token = await issueAgentToken(deps.db, input.serverId, { cipher: deps.cipher, pending: true });
          const home = (await runRemoteStep(session, sh`printf '%s' "$HOME"`, { root: false, step: "home" })).stdout.trim();
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
            return { ...(parseStepOutput(stdout) as StepResult), installedAt };
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
