import { Worker } from "node:worker_threads";
import { AppError } from "../kernel/errors.js";
import type { PreparedKey } from "./private-key.js";

/**
 * Private keys are parsed (and decrypted: a bcrypt KDF) in a small pool of
 * worker threads, each task under a deadline: a hostile key costs one thread
 * for at most that long and never the event loop that answers everything else.
 * A thread past its deadline is terminated and replaced.
 *
 * The threads are shared fairly between owners: each owner has its own queue,
 * a free thread takes the next key of the next owner in turn (round robin), and
 * an owner has at most `maxPerOwner` keys waiting or being parsed. Another
 * owner's key therefore waits for at most the parses already running, not for
 * everything one owner queued.
 */

export interface KeyParsingOptions {
  /** Parallel parses (threads). Default 1. */
  threads?: number;
  /** How long one parse may run before the key is refused. Default 10 s. */
  deadlineMs?: number;
  /** Keys waiting for a thread (all owners) before further ones are refused. Default 64. */
  maxQueued?: number;
  /** Keys of one owner waiting or being parsed before that owner's further ones are refused. Default 16. */
  maxPerOwner?: number;
}

/** One key to parse, and whose share of the threads it is charged to. */
export interface KeyParseRequest {
  /** The organization (owner id) the key belongs to; its keys queue behind its own, not behind others'. */
  ownerId: string;
  key: string;
  passphrase?: string;
  /**
   * Past the owner's `maxPerOwner`: "refuse" (default; an API call answers ResourceExhausted at once)
   * or "queue" (a workflow's activity, which has nobody to answer: it waits its owner's turn, not counted
   * against the owner's API keys).
   */
  overShare?: "refuse" | "queue";
}

interface Task {
  id: number;
  ownerId: string;
  key: string;
  passphrase?: string;
  resolve(result: PreparedKey): void;
  reject(error: unknown): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  task?: Task;
  timer?: NodeJS.Timeout;
}

/** Adds `by` to a per-owner count; a count of 0 is no entry. */
function count(counts: Map<string, number>, ownerId: string, by: number): void {
  const next = (counts.get(ownerId) ?? 0) + by;
  if (next > 0) counts.set(ownerId, next);
  else counts.delete(ownerId);
}

const bootFile = new URL("./key-worker-boot.mjs", import.meta.url);
const workerEntry = new URL(`./key-worker${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url).href;

export class KeyParsingPool {
  readonly deadlineMs: number;
  private readonly threads: number;
  private readonly maxQueued: number;
  readonly maxPerOwner: number;
  private readonly slots: Slot[] = [];
  /** Waiting keys per owner; Map order is the round-robin turn (an owner served goes to the back). */
  private readonly waiting = new Map<string, Task[]>();
  private waitingCount = 0;
  /** Owners at the front of the turn that joined idle and have not been served since. */
  private readonly fresh = new Set<string>();
  /** Keys per owner waiting or being parsed: all of them, and those counted against `maxPerOwner`. */
  private readonly active = new Map<string, number>();
  private readonly held = new Map<string, number>();
  private nextId = 1;

  constructor(options: KeyParsingOptions = {}) {
    this.threads = Math.max(1, options.threads ?? 1);
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.maxQueued = options.maxQueued ?? 64;
    this.maxPerOwner = Math.max(1, options.maxPerOwner ?? 16);
  }

  /** Parses, checks and (when encrypted) decrypts a key off the event loop, in its owner's turn. */
  prepare(request: KeyParseRequest): Promise<PreparedKey> {
    const { ownerId, key, passphrase } = request;
    const counted = request.overShare !== "queue";
    if (counted && (this.held.get(ownerId) ?? 0) >= this.maxPerOwner) {
      return Promise.reject(
        new AppError(
          "resource_exhausted",
          `limit of private keys being checked at once reached: at most ${this.maxPerOwner} per owner (SSH_KEY_PARSE_PER_OWNER); retry when they are answered`,
        ),
      );
    }
    if (this.waitingCount >= this.maxQueued) {
      return Promise.reject(new AppError("resource_exhausted", "too many private keys are being checked at once; try again shortly"));
    }
    return new Promise<PreparedKey>((resolve, reject) => {
      const idle = !this.active.has(ownerId);
      count(this.active, ownerId, 1);
      if (counted) count(this.held, ownerId, 1);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        count(this.active, ownerId, -1);
        if (counted) count(this.held, ownerId, -1);
      };
      const task: Task = {
        id: this.nextId++,
        ownerId,
        key,
        passphrase,
        resolve: (result) => {
          release();
          resolve(result);
        },
        reject: (error) => {
          release();
          reject(error);
        },
      };
      const queue = this.waiting.get(ownerId);
      if (queue) queue.push(task);
      else if (idle) {
        // An owner with nothing running goes ahead of the busy ones (it has had no share yet, they have),
        // behind other owners that joined idle before it.
        const turn = [...this.waiting];
        let at = 0;
        while (at < turn.length && this.fresh.has(turn[at]?.[0] as string)) at += 1;
        turn.splice(at, 0, [ownerId, [task]]);
        this.waiting.clear();
        for (const [id, tasks] of turn) this.waiting.set(id, tasks);
        this.fresh.add(ownerId);
      } else this.waiting.set(ownerId, [task]);
      this.waitingCount += 1;
      this.pump();
    });
  }

  /** The next owner's next key; that owner goes to the back of the turn. */
  private nextTask(): Task | undefined {
    const first = this.waiting.entries().next();
    if (first.done) return undefined;
    const [ownerId, queue] = first.value;
    const task = queue.shift() as Task;
    this.waiting.delete(ownerId);
    this.fresh.delete(ownerId);
    if (queue.length > 0) this.waiting.set(ownerId, queue);
    this.waitingCount -= 1;
    return task;
  }

  private drainWaiting(): Task[] {
    const all = [...this.waiting.values()].flat();
    this.waiting.clear();
    this.fresh.clear();
    this.waitingCount = 0;
    return all;
  }

  /** Starts the threads now, so the first key does not wait for one to load. */
  warm(): void {
    while (this.slots.length < this.threads) this.spawn();
  }

  async close(): Promise<void> {
    for (const task of this.drainWaiting()) task.reject(new AppError("unavailable", "key parsing stopped"));
    await Promise.all(this.slots.splice(0).map((slot) => this.retire(slot)));
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.waitingCount === 0) break;
      if (slot.ready && !slot.task) this.dispatch(slot, this.nextTask() as Task);
    }
    const starting = this.slots.filter((s) => !s.ready).length;
    if (this.waitingCount > starting && this.slots.length < this.threads) this.spawn();
    this.holdProcess();
  }

  /** Threads keep the process alive only while a key waits for its answer: an idle pool never does. */
  private holdProcess(): void {
    const busy = this.waitingCount > 0 || this.slots.some((s) => s.task);
    for (const slot of this.slots) {
      if (busy) slot.worker.ref();
      else slot.worker.unref();
    }
  }

  private spawn(): void {
    const worker = new Worker(bootFile, {
      workerData: { entry: workerEntry },
      resourceLimits: { maxOldGenerationSizeMb: 128 },
      stdout: false,
      stderr: false,
    });
    const slot: Slot = { worker, ready: false };
    this.slots.push(slot);
    worker.on("message", (message: { ready?: true; id?: number; result?: PreparedKey }) => {
      if (message.ready) {
        slot.ready = true;
        this.pump();
      } else if (slot.task && message.id === slot.task.id && message.result) {
        const task = slot.task;
        clearTimeout(slot.timer);
        slot.task = undefined;
        task.resolve(message.result);
        this.pump();
      }
    });
    worker.on("error", (error) => this.lost(slot, error));
    worker.on("exit", () => this.lost(slot, new Error("key-parsing thread exited")));
    this.holdProcess();
  }

  private dispatch(slot: Slot, task: Task): void {
    slot.task = task;
    slot.timer = setTimeout(() => {
      slot.task = undefined;
      void this.retire(slot);
      task.resolve({ ok: false, problem: `took too long to parse (more than ${this.deadlineMs} ms)` });
      this.pump();
    }, this.deadlineMs);
    slot.worker.postMessage({ id: task.id, key: task.key, passphrase: task.passphrase });
  }

  /** A thread died (out of memory, say): its key is refused; one that never started fails what waits. */
  private lost(slot: Slot, error: unknown): void {
    if (!this.slots.includes(slot)) return;
    this.slots.splice(this.slots.indexOf(slot), 1);
    clearTimeout(slot.timer);
    if (slot.task) slot.task.resolve({ ok: false, problem: "could not be parsed" });
    else if (!slot.ready && this.slots.length === 0)
      for (const task of this.drainWaiting()) task.reject(new AppError("internal", "key parsing is unavailable", { cause: error }));
    this.pump();
  }

  private async retire(slot: Slot): Promise<void> {
    const at = this.slots.indexOf(slot);
    if (at >= 0) this.slots.splice(at, 1);
    clearTimeout(slot.timer);
    await slot.worker.terminate();
  }
}

let shared: KeyParsingPool | undefined;

/** The process' pool with default settings, for callers not handed one (tests, tools). */
export function sharedKeyParsing(): KeyParsingPool {
  shared ??= new KeyParsingPool();
  return shared;
}
