// The manager owns the start order of everything `sickbay serve` runs besides its HTTPS
// server, as controller-runtime's manager does: the runnables that need no leadership
// first (the informer caches, certificate upkeep), then, once every cache has synced,
// the leader election, and the runnables that need leadership for each term won. A term
// ends with its own signal: what ran in it stops, and the next term starts anew.
//
// A leader runnable that fails (throws, or returns while the term goes on) ends the term:
// a leader that kept its Lease with a controller gone would leave the cluster without
// that controller and no other replica allowed to run it. The elector resigns (the Lease
// released, so another replica takes over at once) and campaigns again after a backoff;
// without an elector, the next term starts after the backoff.
import { setMaxListeners } from 'node:events';
import type { Logger } from '../core/log.js';
import { errorDetail } from '../kube/errors.js';
import { sleep } from '../util/wait.js';

export interface Runnable {
  name: string;
  /** Runs only on the leader, once per term, with the term's signal. */
  needsLeadership: boolean;
  start(signal: AbortSignal): Promise<void>;
  /** undefined once ready (caches synced), else why not. */
  notReadyReason?(): string | undefined;
}

/**
 * Who leads: `run` campaigns until `signal` aborts, calling `lead` at each term won.
 * `resign(why)` ends that term: leadership given up (the Lease released) and no campaign
 * for `backoffMs`.
 */
export interface Elector {
  run(signal: AbortSignal, lead: (term: AbortSignal, resign: (why: string, backoffMs: number) => void) => void): Promise<void>;
}

/** The first wait after a failed term; doubled for each failed term in a row, up to MAX. */
export const TERM_BACKOFF_MS = 15_000;
export const TERM_BACKOFF_MAX_MS = 5 * 60_000;
/** A term that lasted this long resets the backoff: its failure is not part of a loop. */
const TERM_HEALTHY_MS = 10 * 60_000;

export interface ManagerOptions {
  runnables: Runnable[];
  /** Without one, this process leads from the start (leader election off). */
  elector?: Elector;
  /** Resolves once the caches every leader runnable reads have synced, or when `signal` aborts. */
  waitForCaches?(signal: AbortSignal): Promise<void>;
  log: Logger;
  /** Called with the runnable's name each time a failure ends a term (a metric). */
  onTermFailed?(runnable: string): void;
  /** The first backoff after a failed term (TERM_BACKOFF_MS). */
  termBackoffMs?: number;
}

export class Manager {
  constructor(private readonly o: ManagerOptions) {}

  /** The first runnable not ready, and why. */
  notReadyReason(): string | undefined {
    for (const r of this.o.runnables) {
      const why = r.notReadyReason?.();
      if (why) return `${r.name}: ${why}`;
    }
    return undefined;
  }

  /** Runs everything until `signal` aborts; resolves when what was started has ended. */
  async run(signal: AbortSignal): Promise<void> {
    const always = this.o.runnables.filter((r) => !r.needsLeadership);
    const leaderOnly = this.o.runnables.filter((r) => r.needsLeadership);
    const running = always.map((r) => this.guarded(r, signal));
    if (leaderOnly.length) {
      await this.o.waitForCaches?.(signal);
      if (!signal.aborted) {
        if (this.o.elector) running.push(this.o.elector.run(signal, (term, resign) => running.push(this.term(leaderOnly, term, resign))).catch((err) => this.failed('leader-election', err)));
        else running.push(this.termsWithoutElector(leaderOnly, signal));
      }
    }
    await Promise.allSettled(running);
  }

  private failures = 0;

  /**
   * One term: every leader runnable with the term's signal. The first that fails, or
   * returns while the term goes on, ends the term through `resign`; resolves when all have.
   */
  private async term(rs: Runnable[], term: AbortSignal, resign: (why: string, backoffMs: number) => void): Promise<void> {
    const began = Date.now();
    let ended = false;
    const end = (name: string, why: string) => {
      if (ended || term.aborted) return;
      ended = true;
      if (Date.now() - began >= TERM_HEALTHY_MS) this.failures = 0;
      const backoffMs = Math.min((this.o.termBackoffMs ?? TERM_BACKOFF_MS) * 2 ** this.failures++, TERM_BACKOFF_MAX_MS);
      this.o.log.error('a leader runnable stopped while leading; ending the term', { runnable: name, error: why, backoffMs });
      this.o.onTermFailed?.(name);
      resign(`${name}: ${why}`, backoffMs);
    };
    await Promise.allSettled(
      rs.map((r) =>
        r.start(term).then(
          () => end(r.name, 'returned while still leading'),
          (err) => (term.aborted ? this.failed(r.name, err) : end(r.name, errorDetail(err))),
        ),
      ),
    );
  }

  /** Leader election off: this process leads; a failed term is followed by a new one after the backoff. */
  private async termsWithoutElector(rs: Runnable[], signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const term = new AbortController();
      setMaxListeners(100, term.signal); // every controller's informers and waits listen on it, as on an elected term
      const stop = () => term.abort();
      signal.addEventListener('abort', stop, { once: true });
      let backoff = 0;
      await this.term(rs, term.signal, (_why, ms) => {
        backoff = ms;
        term.abort();
      });
      signal.removeEventListener('abort', stop);
      if (signal.aborted) return;
      await sleep(backoff, signal);
    }
  }

  private guarded(r: Runnable, signal: AbortSignal): Promise<void> {
    return r.start(signal).catch((err) => this.failed(r.name, err));
  }

  private failed(name: string, err: unknown) {
    this.o.log.error('runnable stopped with an error', { runnable: name, error: errorDetail(err) });
  }
}
