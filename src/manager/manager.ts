// The manager owns the start order of everything `sickbay serve` runs besides its HTTPS
// server, as controller-runtime's manager does: the runnables that need no leadership
// first (the informer caches, certificate upkeep), then, once every cache has synced,
// the leader election, and the runnables that need leadership for each term won. A term
// ends with its own signal: what ran in it stops, and the next term starts anew.
import type { Logger } from '../core/log.js';
import { errorDetail } from '../kube/api.js';

export interface Runnable {
  name: string;
  /** Runs only on the leader, once per term, with the term's signal. */
  needsLeadership: boolean;
  start(signal: AbortSignal): Promise<void>;
  /** undefined once ready (caches synced), else why not. */
  notReadyReason?(): string | undefined;
}

/** Who leads: `run` campaigns until `signal` aborts, calling `lead` at each term won. */
export interface Elector {
  run(signal: AbortSignal, lead: (term: AbortSignal) => void): Promise<void>;
}

export interface ManagerOptions {
  runnables: Runnable[];
  /** Without one, this process leads from the start (leader election off). */
  elector?: Elector;
  /** Resolves once the caches every leader runnable reads have synced, or when `signal` aborts. */
  waitForCaches?(signal: AbortSignal): Promise<void>;
  log: Logger;
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
        const lead = (term: AbortSignal) => {
          for (const r of leaderOnly) running.push(this.guarded(r, term));
        };
        if (this.o.elector) running.push(this.o.elector.run(signal, lead).catch((err) => this.failed('leader-election', err)));
        else lead(signal);
      }
    }
    await Promise.allSettled(running);
  }

  private guarded(r: Runnable, signal: AbortSignal): Promise<void> {
    return r.start(signal).catch((err) => this.failed(r.name, err));
  }

  private failed(name: string, err: unknown) {
    this.o.log.error('runnable stopped with an error', { runnable: name, error: errorDetail(err) });
  }
}
