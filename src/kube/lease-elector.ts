// Leader election on a coordination.k8s.io/v1 Lease, the way client-go does it:
// acquire when the lease is free or its holder has not renewed for a lease duration
// (measured on this replica's clock, from when it last saw the record change, so clock
// skew between replicas does not matter); renew every retry period; a 409 means another
// replica won. A leader that cannot renew within the renew deadline stops leading at
// once: every Lease call is aborted when it would outlive that deadline, and a timer
// (and `isLeader()` itself, for a process that was paused) ends the term even if a call
// hangs, so the term is over before another replica may take the lease (lease duration
// > renew deadline, measured from a later moment). A clean shutdown releases the lease
// so another replica takes over immediately; so does a term that its leader work ended
// (resign), after which this replica waits out a backoff before it campaigns again.
import { setMaxListeners } from 'node:events';
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from '../core/log.js';
import { abortable, codeOf, errorText } from './api.js';
import { sleep } from '../util/wait.js';

export interface LeaseElectorOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  log: Logger;
  onLeadershipChange?: (leading: boolean) => void;
}

/**
 * What one acquire-or-renew attempt means for this replica's term. A leader whose call
 * ran out of its budget (which ends at the renew deadline) or that is past the deadline
 * has lost the term to the clock; only an answer showing the lease is another replica's
 * says another replica won. A failed call within the deadline is retried: what was last
 * read of the lease says nothing new.
 */
export function termStep(a: { leading: boolean; ok: boolean; lost: boolean; outOfTime: boolean; sinceRenewMs: number; renewDeadlineMs: number }): 'renewed' | 'deadline' | 'lost' | 'retry' {
  if (a.ok) return 'renewed';
  if (!a.leading) return 'retry';
  if (a.outOfTime || a.sinceRenewMs >= a.renewDeadlineMs) return 'deadline';
  return a.lost ? 'lost' : 'retry';
}

/**
 * The three Lease calls the elector makes, each cancelled by its signal: client-node's
 * (`leaseApi`), or a fake one with a fake clock (tests/unit/lease-elector.test.ts).
 */
export interface LeaseApi {
  read(signal: AbortSignal): Promise<V1Lease>;
  create(body: V1Lease, signal: AbortSignal): Promise<unknown>;
  /** A compare-and-swap: the body's resourceVersion must be the stored one (409 otherwise). */
  replace(body: V1Lease, signal: AbortSignal): Promise<unknown>;
}

export function leaseApi(kc: KubeConfig, namespace: string, name: string): LeaseApi {
  const api = kc.makeApiClient(CoordinationV1Api);
  return {
    read: (signal) => api.readNamespacedLease({ name, namespace }, abortable(signal)),
    create: (body, signal) => api.createNamespacedLease({ namespace, body }, abortable(signal)),
    replace: (body, signal) => api.replaceNamespacedLease({ name, namespace, body }, abortable(signal)),
  };
}

export class LeaseElector {
  private readonly api: LeaseApi;
  private observed?: { holder: string; renewTime: string; at: number };
  private leading = false;
  private leaderAbort?: AbortController;
  private lastRenew = 0;
  private deadline?: NodeJS.Timeout;
  /** No campaign before this (ms): a resigned term's backoff. */
  private pausedUntil = 0;
  private resigned?: Promise<void>;

  constructor(
    kc: KubeConfig | LeaseApi,
    private readonly o: LeaseElectorOptions,
  ) {
    this.api = 'replace' in kc ? kc : leaseApi(kc, o.namespace, o.name);
  }

  /** True while this replica holds the lease and renewed it within the renew deadline. */
  isLeader(): boolean {
    // At the deadline itself the term is over: the loop's call is aborted at exactly that
    // moment, and must find the term ended, not still running.
    if (this.leading && Date.now() - this.lastRenew >= this.o.renewDeadlineMs) {
      this.o.log.error('the lease was not renewed within the renew deadline; stopping leader work', { lease: this.o.name });
      this.stopLeading();
    }
    return this.leading;
  }

  /**
   * Runs until `signal` aborts. `lead(term)` is called each time this replica becomes
   * leader; `term` aborts the moment leadership is lost, and a later term gets a new one.
   */
  async run(signal: AbortSignal, lead: (term: AbortSignal, resign: (why: string, backoffMs: number) => void) => void): Promise<void> {
    while (!signal.aborted) {
      if (Date.now() < this.pausedUntil) {
        await sleep(Math.min(this.pausedUntil - Date.now(), this.o.retryPeriodMs), signal);
        continue;
      }
      // A leader's call may last until its renew deadline; a candidate's, a renew deadline.
      const attemptAt = Date.now();
      const budget = this.leading ? this.lastRenew + this.o.renewDeadlineMs - attemptAt : this.o.renewDeadlineMs;
      let ok = false;
      let lost = false; // the API server answered, and the lease is another replica's
      let outOfTime = budget <= 0;
      if (budget > 0) {
        const call = new AbortController();
        const timer = setTimeout(() => call.abort(), budget);
        const stop = () => call.abort();
        signal.addEventListener('abort', stop, { once: true });
        try {
          ok = await this.tryAcquireOrRenew(call.signal);
          lost = !ok;
        } catch (err) {
          outOfTime = call.signal.aborted && !signal.aborted;
          this.o.log.warn('lease update failed', { lease: this.o.name, error: outOfTime ? `no answer within ${budget} ms` : errorText(err) });
        } finally {
          clearTimeout(timer);
          signal.removeEventListener('abort', stop);
        }
      }
      if (signal.aborted) break;
      const step = termStep({ leading: this.leading, ok, lost, outOfTime, sinceRenewMs: Date.now() - this.lastRenew, renewDeadlineMs: this.o.renewDeadlineMs });
      if (step === 'renewed') {
        // From when the renew was sent, not answered: the term ends no later than it may.
        this.lastRenew = attemptAt;
        this.armDeadline();
        if (!this.leading && Date.now() < this.pausedUntil) {
          // A renew in flight when the term was resigned landed after the release: give it back.
          this.resigned = this.releaseQuietly();
        } else if (!this.leading) {
          this.setLeading(true);
          const term = new AbortController();
          this.leaderAbort = term;
          setMaxListeners(100, term.signal); // every controller's informers and waits listen on it
          lead(term.signal, (why, backoffMs) => this.resign(term, why, backoffMs));
        }
      } else if (step === 'deadline') {
        this.o.log.error('the lease was not renewed within the renew deadline; stopping leader work', { lease: this.o.name });
        this.stopLeading();
      } else if (step === 'lost') {
        this.o.log.error('another replica holds the lease; stopping leader work', { holder: this.observed?.holder ?? '' });
        this.stopLeading();
      }
      await sleep(this.o.retryPeriodMs, signal);
    }
    if (this.leading) {
      this.stopLeading();
      await this.release().catch((err) => this.o.log.warn('could not release the lease', { error: errorText(err) }));
    }
    await this.resigned;
  }

  /**
   * Ends `term` if it is still the current one: leader work stops, the lease is released
   * (another replica may take it at once instead of after a lease duration), and this
   * replica does not campaign for `backoffMs`.
   */
  private resign(term: AbortController, why: string, backoffMs: number) {
    if (this.leaderAbort !== term || !this.leading) return;
    this.o.log.error('resigning the lease: leader work stopped', { lease: this.o.name, why, backoffMs });
    this.pausedUntil = Date.now() + backoffMs;
    this.stopLeading();
    this.resigned = this.releaseQuietly();
  }

  /** Ends the term at the renew deadline unless a renew comes first, whatever the loop is waiting on. */
  private armDeadline() {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.isLeader(), this.o.renewDeadlineMs + 1);
    this.deadline.unref();
  }

  private setLeading(v: boolean) {
    this.leading = v;
    this.o.log.info(v ? 'became leader' : 'stopped leading', { lease: this.o.name, identity: this.o.identity });
    this.o.onLeadershipChange?.(v);
  }

  private stopLeading() {
    clearTimeout(this.deadline);
    this.leaderAbort?.abort();
    this.leaderAbort = undefined;
    this.setLeading(false);
  }

  private async tryAcquireOrRenew(cancel: AbortSignal): Promise<boolean> {
    const now = new V1MicroTime(Date.now());
    const durationSeconds = Math.ceil(this.o.leaseDurationMs / 1000);
    let lease: V1Lease;
    try {
      lease = await this.api.read(cancel);
    } catch (err) {
      if (codeOf(err) !== 404) throw err;
      try {
        await this.api.create(
          {
            metadata: { name: this.o.name, namespace: this.o.namespace },
            spec: { holderIdentity: this.o.identity, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
          cancel,
        );
        return true;
      } catch (e) {
        if (codeOf(e) === 409) return false; // another replica created it first
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewTime = spec.renewTime ? new Date(spec.renewTime).toISOString() : '';
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: Date.now() };
    }
    const heldByMe = holder === this.o.identity;
    const holderDuration = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    const expired = holder === '' || Date.now() - this.observed.at > holderDuration;
    if (!heldByMe && !expired) return false;
    const next: V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.o.identity,
        leaseDurationSeconds: durationSeconds,
        renewTime: now,
        acquireTime: heldByMe && spec.acquireTime ? new V1MicroTime(new Date(spec.acquireTime).getTime()) : now,
        leaseTransitions: heldByMe ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      // resourceVersion in the body makes this a compare-and-swap: a 409 means we lost.
      await this.api.replace(next, cancel);
      return true;
    } catch (err) {
      if (codeOf(err) === 409) return false;
      throw err;
    }
  }

  private releaseQuietly(): Promise<void> {
    return this.release().catch((err) => void this.o.log.warn('could not release the lease; another replica takes it after its duration', { error: errorText(err) }));
  }

  private async release() {
    const signal = AbortSignal.timeout(this.o.renewDeadlineMs);
    const lease = await this.api.read(signal);
    if (lease.spec?.holderIdentity !== this.o.identity) return;
    await this.api.replace({ ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: new V1MicroTime(Date.now()) } }, signal);
    this.o.log.info('released the lease', { lease: this.o.name });
  }
}
