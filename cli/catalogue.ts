import type { CommandBody } from "./command.js";

/**
 * The top-level commands, named and described here so that `axion --help` needs none of their code: only
 * the chosen command's module (and the generated descriptors it uses) is loaded.
 */
export interface TopCommand {
  command: string;
  aliases?: string[];
  describe: string;
  load: () => Promise<CommandBody>;
}

export const topCommands: TopCommand[] = [
  {
    command: "login",
    describe: "Log in to an API: the token is checked against it, then stored in the config file (mode 0600)",
    load: async () => (await import("./commands/login.js")).login,
  },
  {
    command: "logout",
    describe: "Forget the stored token (the token itself stays valid: revoke it with axion tokens revoke)",
    load: async () => (await import("./commands/login.js")).logout,
  },
  {
    command: "whoami",
    describe: "The API in use and the token it knows you by",
    load: async () => (await import("./commands/login.js")).whoami,
  },
  {
    command: "tokens",
    describe: "Your API tokens: list, create, revoke",
    load: async () => (await import("./commands/tokens.js")).tokens,
  },
  {
    command: "audit",
    describe: "The audit trail: list who changed what, from where, with what outcome; verify its hash chain",
    load: async () => (await import("./commands/audit.js")).audit,
  },
  {
    command: "clusters",
    aliases: ["cluster"],
    describe: "Clusters: list, get, create, update, delete",
    load: async () => (await import("./commands/clusters.js")).clusters,
  },
  {
    command: "servers",
    aliases: ["server"],
    describe: "Servers: inventory, provisioning, metrics",
    load: async () => (await import("./commands/servers.js")).servers,
  },
  {
    command: "providers",
    aliases: ["provider"],
    describe: "VPS provider accounts (Time4VPS) that reinstall rebuilds through: list, get, create, update, delete",
    load: async () => (await import("./commands/providers.js")).providers,
  },
  {
    command: "ops",
    aliases: ["operations"],
    describe: "Operations: list, get, watch, cancel",
    load: async () => (await import("./commands/ops.js")).ops,
  },
  {
    command: "rollout",
    aliases: ["rollouts"],
    describe: "Fleet rollouts: plan, start, get, list, watch, pause, resume, abort",
    load: async () => (await import("./commands/rollout.js")).rollout,
  },
  {
    command: "alerts",
    aliases: ["alert"],
    describe: "Alerts: list (filter by server, kind, state), get (history and notices per channel)",
    load: async () => (await import("./commands/alerts.js")).alerts,
  },
  {
    command: "channels",
    aliases: ["channel"],
    describe: "Where alert notices go (webhook, Slack): list, create, test, delete",
    load: async () => (await import("./commands/channels.js")).channels,
  },
  {
    command: "alert-rules",
    describe: "What alerts you: list, set",
    load: async () => (await import("./commands/alert-rules.js")).alertRules,
  },
  {
    command: "agents",
    aliases: ["agent"],
    describe: "The axion-agent on a server",
    load: async () => (await import("./commands/agents.js")).agents,
  },
];

/**
 * The commands this invocation may run: every one whose name or alias is a word of the arguments (a word
 * that is also a value, say a server named "login", only loads one module more).
 */
export function chosen(argv: string[]): TopCommand[] {
  const words = new Set(argv);
  return topCommands.filter((c) => words.has(c.command) || c.aliases?.some((a) => words.has(a)));
}
