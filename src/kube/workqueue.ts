// A keyed work queue in controller-runtime's image: keys, not events; a key is queued
// at most once; one reconcile per key at a time (a key added while it is being
// processed runs again afterwards); failures retry with per-key exponential backoff;
// a reconcile may ask to run again after a delay.
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { errorText } from './api.js';

export type ReconcileResult = void | { requeueAfterMs?: number };
export type Reconciler = (key: string) => Promise<ReconcileResult>;

export interface WorkQueueOptions {
  name: string;
  concurrency?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  log: Logger;
  metrics?: Metrics;
  /**
   * Checked before each reconcile: false ends this worker (the leadership term is over,
   * even if its signal has not fired yet, as after the process was paused).
   */
  canAct?: () => boolean;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  /** Keys in `queue`, and when each was added. */
  private readonly queued = new Map<string, number>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly idle: Array<(key: string | undefined) => void> = [];
  private stopped = false;

  constructor(
    private readonly reconcile: Reconciler,
    private readonly o: WorkQueueOptions,
  ) {}

  get depth() {
    return this.queue.length;
  }

  add(key: string) {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const worker = this.idle.shift();
    if (worker) {
      // Marked before the worker wakes, so a second add in between waits its turn.
      this.processing.add(key);
      this.o.metrics?.queueWait.observe({ queue: this.o.name }, 0);
      return worker(key);
    }
    this.queued.set(key, performance.now());
    this.queue.push(key);
    this.o.metrics?.queueDepth.set({ queue: this.o.name }, this.queue.length);
  }

  /** Adds the key after `ms`; an earlier pending add wins. */
  addAfter(key: string, ms: number) {
    if (this.stopped) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  async run(signal: AbortSignal): Promise<void> {
    const workers = Array.from({ length: this.o.concurrency ?? 4 }, () => this.worker(signal));
    signal.addEventListener('abort', () => this.shutdown(), { once: true });
    await Promise.all(workers);
  }

  private shutdown() {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    for (const worker of this.idle.splice(0)) worker(undefined);
  }

  private next(): Promise<string | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key === undefined) return new Promise((resolve) => this.idle.push(resolve));
    const added = this.queued.get(key)!;
    this.queued.delete(key);
    this.o.metrics?.queueWait.observe({ queue: this.o.name }, (performance.now() - added) / 1000);
    this.o.metrics?.queueDepth.set({ queue: this.o.name }, this.queue.length);
    return Promise.resolve(key);
  }

  private async worker(signal: AbortSignal) {
    while (!signal.aborted) {
      const key = await this.next();
      if (key === undefined) return;
      if (signal.aborted || (this.o.canAct && !this.o.canAct())) {
        this.shutdown();
        return;
      }
      this.processing.add(key);
      const started = performance.now();
      try {
        const res = await this.reconcile(key);
        this.failures.delete(key);
        if (res?.requeueAfterMs !== undefined) this.addAfter(key, res.requeueAfterMs);
      } catch (err) {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        const delay = Math.min((this.o.baseDelayMs ?? 100) * 2 ** (n - 1), this.o.maxDelayMs ?? 60_000);
        this.o.metrics?.reconcileErrors.inc({ controller: this.o.name });
        this.o.log.warn('reconcile failed; retrying', { key, attempt: n, retryInMs: delay, error: errorText(err) });
        this.addAfter(key, delay);
      } finally {
        this.o.metrics?.reconcileDuration.observe({ controller: this.o.name }, (performance.now() - started) / 1000);
        this.processing.delete(key);
        if (this.dirty.delete(key)) this.add(key);
      }
    }
  }
}
