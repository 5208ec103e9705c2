import { execFile, execFileSync } from "node:child_process";

export interface TerminalRun {
  exitCode: number;
  /** The visible screen, one string per row (trailing blanks trimmed), wide characters as they are. */
  screen: string[];
  /** Rows scrolled off the top into tmux's history (what an operator scrolls back through). */
  history: number;
  /** The history's rows, then the screen's. */
  all: string[];
}

/**
 * A real terminal for the `axion` command: a tmux server of its own, one session per run at the size
 * asked (80×24 unless told), tmux's defaults otherwise (scroll-on-clear on). A run ends on the
 * command's exit, signalled through `tmux wait-for`, which is not missed if it comes first.
 */
export function terminal() {
  const socket = ["-L", `axion-terminal-${process.pid}`];
  let runs = 0;
  const tmux = (args: string[]) => execFileSync("tmux", [...socket, ...args], { encoding: "utf8" });
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  return {
    /** Starts `argv` in a new session; `started` resolves once it runs, `ended` once it exited. */
    start(argv: string[], options: { env?: Record<string, string>; columns?: number; rows?: number } = {}) {
      runs += 1;
      const session = `run-${runs}`;
      const env = Object.entries({ TERM: "xterm-256color", ...options.env }).map(([k, v]) => `${k}=${quote(v)}`);
      const done = `done-${process.pid}-${runs}`;
      const command = `${[...env, ...argv.map(quote)].join(" ")}; echo "EXIT=$?"; tmux ${socket.join(" ")} wait-for -S ${done}; sleep 3600`;
      tmux(["new-session", "-d", "-s", session, "-x", String(options.columns ?? 80), "-y", String(options.rows ?? 24), command]);
      const ended = new Promise<TerminalRun>((resolve, reject) => {
        execFile("tmux", [...socket, "wait-for", done], (error) => {
          if (error) return reject(error);
          const rows = (args: string[]) => {
            const lines = tmux(["capture-pane", "-p", ...args, "-t", session])
              .split("\n")
              .map((l) => l.trimEnd());
            while (lines.length > 0 && lines.at(-1) === "") lines.pop();
            return lines;
          };
          const screen = rows([]);
          const all = rows(["-S", "-"]);
          const history = Number(tmux(["display-message", "-p", "-t", session, "#{history_size}"]).trim());
          const exit = screen.map((l) => /^EXIT=(\d+)$/.exec(l)).find(Boolean);
          tmux(["kill-session", "-t", session]);
          resolve({ exitCode: exit ? Number(exit[1]) : -1, screen, history, all });
        });
      });
      return { session, ended };
    },
    run(argv: string[], options: { env?: Record<string, string>; columns?: number; rows?: number } = {}): Promise<TerminalRun> {
      return this.start(argv, options).ended;
    },
    close() {
      try {
        tmux(["kill-server"]);
      } catch {
        // no session left
      }
    },
  };
}
