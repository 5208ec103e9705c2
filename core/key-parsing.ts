import { Worker } from "node:worker_threads";
import { AppError } from "./errors.js";
import type { PreparedKey } from "./private-key.js";

/**
 * Private keys are parsed (and decrypted: a bcrypt KDF) in a small pool of
 * worker threads, each task under a deadline: a hostile key costs one thread
 * for at most that long and never the event loop that answers everything else.
 * A thread past its deadline is terminated and replaced.
 */

export interface KeyParsingOptions {
  /** Parallel parses (threads). Default 1. */
  threads?: number;
  /** How long one parse may run before the key is refused. Default 10 s. */
  deadlineMs?: number;
  /** Keys waiting for a thread before further ones are refused. Default 64. */
  maxQueued?: number;
}

interface Task {
  id: number;
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

const bootFile = new URL("./key-worker-boot.mjs", import.meta.url);
const workerEntry = new URL(`./key-worker${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url).href;

export class KeyParsingPool {
  readonly deadlineMs: number;
  private readonly threads: number;
  private readonly maxQueued: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 1;

  constructor(options: KeyParsingOptions = {}) {
    this.threads = Math.max(1, options.threads ?? 1);
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.maxQueued = options.maxQueued ?? 64;
  }

  /** Parses, checks and (when encrypted) decrypts a key off the event loop. */
  prepare(key: string, passphrase?: string): Promise<PreparedKey> {
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(new AppError("resource_exhausted", "too many private keys are being checked at once; try again shortly"));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, key, passphrase, resolve, reject });
      this.pump();
    });
  }

  /** Starts the threads now, so the first key does not wait for one to load. */
  warm(): void {
    while (this.slots.length < this.threads) this.spawn();
  }

  async close(): Promise<void> {
    for (const task of this.queue.splice(0)) task.reject(new AppError("unavailable", "key parsing stopped"));
    await Promise.all(this.slots.splice(0).map((slot) => this.retire(slot)));
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) break;
      if (slot.ready && !slot.task) this.dispatch(slot, this.queue.shift() as Task);
    }
    const starting = this.slots.filter((s) => !s.ready).length;
    if (this.queue.length > starting && this.slots.length < this.threads) this.spawn();
    this.holdProcess();
  }

  /** Threads keep the process alive only while a key waits for its answer: an idle pool never does. */
  private holdProcess(): void {
    const busy = this.queue.length > 0 || this.slots.some((s) => s.task);
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
      for (const task of this.queue.splice(0)) task.reject(new AppError("internal", "key parsing is unavailable", { cause: error }));
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
