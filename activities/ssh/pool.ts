import type { SshSession } from "./session.js";

/**
 * Idle SSH sessions kept for the next activity of the same workflow run on the
 * same server, so a bootstrap's steps share a few connections instead of
 * logging in once per step (each login costs the host a key exchange, an sshd
 * process and a PAM/logind session). A session is handed to one activity at a
 * time, and closed after `idleMs` unused.
 */
export class SshSessionPool {
  private readonly idle = new Map<string, { session: SshSession; timer: NodeJS.Timeout }>();

  constructor(private readonly idleMs = 15_000) {}

  /** The idle session kept under `key`, if it is still connected. */
  take(key: string): SshSession | undefined {
    const entry = this.idle.get(key);
    if (!entry) return undefined;
    this.idle.delete(key);
    clearTimeout(entry.timer);
    if (entry.session.isOpen()) return entry.session;
    entry.session.close();
    return undefined;
  }

  /** Keeps `session` for the next `take(key)`. */
  give(key: string, session: SshSession): void {
    this.take(key)?.close();
    session.attach(undefined);
    const timer = setTimeout(() => {
      this.idle.delete(key);
      session.close();
    }, this.idleMs);
    timer.unref();
    this.idle.set(key, { session, timer });
  }

  get size(): number {
    return this.idle.size;
  }

  closeAll(): void {
    for (const key of [...this.idle.keys()]) this.take(key)?.close();
  }
}
