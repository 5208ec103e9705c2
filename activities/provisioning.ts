import { ApplicationFailure } from "@temporalio/common";
import type { DeployKeyAction } from "../core/kernel/kinds.js";
import type { ConnectionTestResult, HostFacts, StepResult } from "../workflows/definitions.js";
import { FailureType } from "../workflows/failure-types.js";
import type { ActivityDeps } from "./deps.js";
import { machineOf } from "./host-facts/arch.js";
import { osReleaseOf } from "./host-facts/os-release.js";
import { type FactName, readHostAnswers } from "./host-facts/read.js";
import { dockerVersionOf, kernelOf, memoryMbOf, rootFreeMbOf } from "./host-facts/resources.js";
import {
  adminUserScript,
  authorizedKeyScript,
  dockerScript,
  firewallScript,
  parseStepOutput,
  type StepMode,
  sshHardeningScript,
} from "./host-scripts.js";
import { type ServerRecord, type SessionOptions, withServerSession } from "./server-access.js";
import { SshErrorType, sshFailure } from "./ssh/errors.js";
import { isShareBusy } from "./ssh/owner-shares.js";
import { heartbeating, runRemoteStep } from "./ssh/remote-step.js";
import { presentedFingerprint, type SshSession } from "./ssh/session.js";
import type { ShellFragment } from "./ssh/shell.js";

const supportedOs: Record<string, string[]> = { debian: ["11", "12"], ubuntu: ["20.04", "22.04", "24.04"] };
const supportedArch = ["x86_64", "aarch64"];
export const MIN_ROOT_FREE_MB = 1024;
export const MIN_MEMORY_MB = 512;

/** The facts a preflight decides on, each through its bounded parser (activities/host-facts/). */
export async function readFacts(session: SshSession): Promise<HostFacts> {
  const answers = await readHostAnswers(session, ["/etc/os-release", "uname -m", "uname -r", "df /", "MemTotal", "docker --version"]);
  const answer = (name: FactName) => answers.get(name) ?? Buffer.alloc(0);
  const os = osReleaseOf(answer("/etc/os-release"));
  const docker = answers.get("docker --version");
  return {
    osId: os.id,
    osVersion: os.versionId,
    osPrettyName: os.prettyName,
    arch: machineOf(answer("uname -m")),
    kernel: kernelOf(answer("uname -r")),
    rootFreeMb: rootFreeMbOf(answer("df /")),
    memoryMb: memoryMbOf(answer("MemTotal")),
    // Silent (a half-installed package): absent, which the docker step repairs; anything said is parsed.
    dockerVersion: docker?.length ? dockerVersionOf(docker) : undefined,
  };
}

/** The connection-test outcome an SSH failure stands for. */
export function outcomeOf(error: unknown): ConnectionTestResult["outcome"] {
  const type = error instanceof ApplicationFailure ? error.type : undefined;
  if (type === SshErrorType.AuthFailed || type === SshErrorType.KeyUnusable) return "auth_failed";
  if (type === SshErrorType.SudoPasswordRefused || type === SshErrorType.SudoNotAllowed) return "auth_failed";
  if (type === SshErrorType.HostKeyMismatch) return "hostkey_mismatch";
  if (type === SshErrorType.Timeout) return "timeout";
  if (type === SshErrorType.RefusedByPolicy) return "refused_by_policy";
  return "unreachable";
}

/**
 * Why a host cannot be bootstrapped (unsupported OS or architecture, too little
 * disk or memory), as the failure the preflight throws; undefined when it can.
 * The preflight and a plan's preflight check both decide with this.
 */
export function preflightProblem(facts: HostFacts): ApplicationFailure | undefined {
  if (!supportedOs[facts.osId]?.includes(facts.osVersion)) {
    return sshFailure(
      SshErrorType.UnsupportedOs,
      `unsupported operating system: ${facts.osPrettyName || `${facts.osId} ${facts.osVersion}`}`,
    );
  }
  if (!supportedArch.includes(facts.arch)) return sshFailure(SshErrorType.UnsupportedOs, `unsupported architecture: ${facts.arch}`);
  if (facts.rootFreeMb < MIN_ROOT_FREE_MB) {
    return ApplicationFailure.nonRetryable(
      `only ${facts.rootFreeMb} MB free on /, at least ${MIN_ROOT_FREE_MB} MB needed`,
      FailureType.InsufficientResources,
    );
  }
  if (facts.memoryMb < MIN_MEMORY_MB) {
    return ApplicationFailure.nonRetryable(
      `only ${facts.memoryMb} MB of memory, at least ${MIN_MEMORY_MB} MB needed`,
      FailureType.InsufficientResources,
    );
  }
  return undefined;
}

export interface HostStep {
  /** The step's script in check or apply mode: one script for both. */
  script: (deps: ActivityDeps, server: ServerRecord, mode: StepMode) => ShellFragment;
  timeoutMs: number;
  afterwards?: SessionOptions["afterwards"];
}

/** The bootstrap's host steps, by their progress names: the bootstrap applies them, a plan checks them. */
export const hostSteps = {
  admin_user: { script: (deps, _server, mode) => adminUserScript(deps.adminUser, mode), timeoutMs: 60_000 },
  docker: { script: (_deps, _server, mode) => dockerScript(mode), timeoutMs: 15 * 60_000 },
  // Both change how SSH is reached: the step after each logs in anew, proving the host still lets us in.
  firewall: { script: (_deps, server, mode) => firewallScript(server.sshPort, mode), timeoutMs: 5 * 60_000, afterwards: "close" },
  ssh_hardening: {
    script: (_deps, server, mode) => sshHardeningScript(server.authMethod === "private_key", mode),
    timeoutMs: 60_000,
    afterwards: "close",
  },
} satisfies Record<string, HostStep>;

export const DEPLOY_KEY_UNSET = "ORCHESTRATOR_SSH_PUBLIC_KEY is not set";

/** The deploy-key step: undefined when no ORCHESTRATOR_SSH_PUBLIC_KEY is configured (the step is skipped). */
export function deployKeyStep(deps: ActivityDeps, action: DeployKeyAction): HostStep | undefined {
  const publicKey = deps.orchestratorPublicKey;
  if (!publicKey) return undefined;
  return { script: (_deps, _server, mode) => authorizedKeyScript(deps.adminUser, publicKey, action, mode), timeoutMs: 60_000 };
}

/**
 * One idempotent step as one script: a session to the server, the script run
 * through the remote-step helper (activities/ssh/remote-step.ts: heartbeats,
 * cancellation kills the remote command, capped output), its `AXION_RESULT`
 * line parsed. Steps that do more in one session (reading facts, a diagnosis,
 * a plan's checks, the agent install's uploads) call that helper themselves.
 */
export function remoteStep(
  deps: ActivityDeps,
  serverId: string,
  script: (server: ServerRecord) => ShellFragment,
  options: { timeoutMs: number; step?: string } & SessionOptions,
): Promise<StepResult & { skipped?: boolean }> {
  return heartbeating(() =>
    withServerSession(
      deps,
      serverId,
      async (session, server) => {
        const { stdout } = await runRemoteStep(session, script(server), { timeoutMs: options.timeoutMs, step: options.step });
        const parsed = parseStepOutput(stdout, options.step);
        return { changed: parsed.changed, detail: parsed.detail, ...(parsed.skipped ? { skipped: true } : {}) };
      },
      options,
    ),
  );
}

/** A host step in apply mode. */
export const applyStep = (deps: ActivityDeps, serverId: string, step: HostStep, name: string) =>
  remoteStep(deps, serverId, (server) => step.script(deps, server, "apply"), {
    timeoutMs: step.timeoutMs,
    afterwards: step.afterwards,
    step: name,
  });

/** SSH activities: one idempotent step each, the server addressed by id only. */
export function createProvisioningActivities(deps: ActivityDeps) {
  return {
    /** Classified, never thrown: the caller wants an answer in seconds, not retries. */
    async testConnection(input: { serverId: string }): Promise<ConnectionTestResult> {
      try {
        return await heartbeating(() =>
          withServerSession(
            deps,
            input.serverId,
            async (session) => ({
              outcome: "ok" as const,
              message: "connected",
              fingerprint: session.fingerprint,
              facts: await readFacts(session),
            }),
            // The test is its run's only SSH step: nothing would reuse the session, so it ends with the answer.
            { afterwards: "close" },
          ),
        );
      } catch (error) {
        if (error instanceof ApplicationFailure && error.type === FailureType.ServerNotFound) throw error;
        if (isShareBusy(error)) throw error;
        // Connected and logged in: the connection works, the host's answers do not (the message names the fact).
        if (error instanceof ApplicationFailure && error.type === FailureType.HostAnswerInvalid) {
          return { outcome: "ok", message: `connected, but the host's facts are unusable: ${error.message}` };
        }
        const seen = presentedFingerprint(error);
        return {
          outcome: outcomeOf(error),
          message: error instanceof Error ? error.message : String(error),
          ...(seen ? { fingerprint: seen } : {}),
        };
      }
    },

    /** Opens a session (pinning the host key on first use); failures are typed and retried by the workflow. */
    connect: (input: { serverId: string }): Promise<StepResult> =>
      heartbeating(() =>
        withServerSession(deps, input.serverId, async (session) => ({ changed: false, detail: `host key ${session.fingerprint}` })),
      ),

    /** Supported OS, architecture, free disk and memory; Docker's version when present. */
    async preflight(input: { serverId: string }): Promise<HostFacts> {
      return heartbeating(() =>
        withServerSession(deps, input.serverId, async (session) => {
          const facts = await readFacts(session);
          const problem = preflightProblem(facts);
          if (problem) throw problem;
          if (session.fingerprint === "") throw new Error("no host key seen");
          return facts;
        }),
      );
    },

    ensureAdminUser: (input: { serverId: string }) => applyStep(deps, input.serverId, hostSteps.admin_user, "admin_user"),
    ensureDocker: (input: { serverId: string }) => applyStep(deps, input.serverId, hostSteps.docker, "docker"),
    ensureFirewall: (input: { serverId: string }) => applyStep(deps, input.serverId, hostSteps.firewall, "firewall"),
    hardenSsh: (input: { serverId: string }) => applyStep(deps, input.serverId, hostSteps.ssh_hardening, "ssh_hardening"),

    /** ORCHESTRATOR_SSH_PUBLIC_KEY for the admin user: added once, or removed; other lines untouched. */
    async setDeployKey(input: { serverId: string; action: DeployKeyAction }): Promise<StepResult & { skipped?: boolean }> {
      const step = deployKeyStep(deps, input.action);
      if (!step) return { changed: false, skipped: true, detail: DEPLOY_KEY_UNSET };
      return applyStep(deps, input.serverId, step, "deploy_key");
    },
  };
}
