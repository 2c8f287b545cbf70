import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { type LeaseApi, LeaseElector, termStep } from '../../src/kube/lease-elector.js';
import { createLogger } from '../../src/core/log.js';

// What one acquire-or-renew attempt means for a replica's term. The loop's call is aborted
// when it would outlive the renew deadline, so a hung renew ends exactly at the deadline
// (or, by the clock's rounding, a millisecond before it): that is the clock ending the
// term, never "another replica holds the lease".
describe('termStep', () => {
  const leader = { leading: true, ok: false, lost: false, outOfTime: false, sinceRenewMs: 3_000, renewDeadlineMs: 10_000 };

  it('a renew that got no answer until the deadline ends the term at the deadline, whoever was last seen holding', () => {
    assert.equal(termStep({ ...leader, outOfTime: true, sinceRenewMs: 10_000 }), 'deadline');
    assert.equal(termStep({ ...leader, outOfTime: true, sinceRenewMs: 9_999 }), 'deadline');
  });
  it('a leader past the deadline has lost the term to the clock, even if an answer came', () => {
    assert.equal(termStep({ ...leader, sinceRenewMs: 10_000 }), 'deadline');
    assert.equal(termStep({ ...leader, lost: true, sinceRenewMs: 12_000 }), 'deadline');
  });
  it('an answer within the deadline showing the lease is another replica\'s ends the term as lost', () => {
    assert.equal(termStep({ ...leader, lost: true }), 'lost');
  });
  it('a failed call within the deadline is retried, the term goes on', () => {
    assert.equal(termStep(leader), 'retry');
    assert.equal(termStep({ ...leader, sinceRenewMs: 9_999 }), 'retry');
  });
  it('a renew or an acquisition that succeeded renews', () => {
    assert.equal(termStep({ ...leader, ok: true, sinceRenewMs: 9_999 }), 'renewed');
    assert.equal(termStep({ ...leader, leading: false, ok: true }), 'renewed');
  });
  it('a candidate that failed only retries', () => {
    assert.equal(termStep({ ...leader, leading: false, lost: true }), 'retry');
    assert.equal(termStep({ ...leader, leading: false, outOfTime: true }), 'retry');
  });
});

// The elector's loop on a fake clock (node:test's mock timers: Date and setTimeout) and a
// fake Lease API that keeps one Lease with compare-and-swap on its resourceVersion, as
// the API server does. A replica marked down has its calls hang until they are aborted.
describe('LeaseElector on a fake clock', () => {
  const timing = { leaseDurationMs: 6_000, renewDeadlineMs: 4_000, retryPeriodMs: 1_000 };
  const quiet = createLogger('error');

  class FakeLeases {
    lease?: V1Lease;
    private version = 0;
    readonly down = new Set<string>();
    api(id: string): LeaseApi {
      const gate = (signal: AbortSignal) =>
        this.down.has(id) ? new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })) : Promise.resolve();
      const store = (body: V1Lease) => {
        this.lease = structuredClone({ ...body, metadata: { ...body.metadata, resourceVersion: String(++this.version) } });
        return this.lease;
      };
      return {
        read: async (signal) => {
          await gate(signal);
          if (!this.lease) throw Object.assign(new Error('not found'), { code: 404 });
          return structuredClone(this.lease);
        },
        create: async (body, signal) => {
          await gate(signal);
          if (this.lease) throw Object.assign(new Error('exists'), { code: 409 });
          return store(body);
        },
        replace: async (body, signal) => {
          await gate(signal);
          if (body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw Object.assign(new Error('conflict'), { code: 409 });
          return store(body);
        },
      };
    }
    /** Another replica (not an elector here) takes the lease. */
    takeOver(holder: string) {
      this.lease = structuredClone({ ...this.lease!, metadata: { ...this.lease!.metadata, resourceVersion: String(++this.version) }, spec: { ...this.lease!.spec, holderIdentity: holder, renewTime: new V1MicroTime(Date.now()) } });
    }
  }

  /** One replica: its elector running, its terms recorded (start and end on the fake clock). */
  function replica(leases: FakeLeases, id: string, stop: AbortSignal) {
    const terms: Array<{ start: number; end?: number; resign: (why: string, backoffMs: number) => void }> = [];
    const elector = new LeaseElector(leases.api(id), { namespace: 'ns', name: 'lease', identity: id, ...timing, log: quiet });
    const running = elector.run(stop, (term, resign) => {
      const t = { start: Date.now(), end: undefined as number | undefined, resign };
      terms.push(t);
      term.addEventListener('abort', () => (t.end = Date.now()), { once: true });
    });
    return { elector, terms, running };
  }

  /** Runs `fn` on the fake clock; its replicas stop when it ends. */
  async function onFakeClock(fn: (stop: AbortSignal) => Promise<void>) {
    mock.timers.enable({ apis: ['Date', 'setTimeout'], now: 1_000_000 });
    const stop = new AbortController();
    try {
      await fn(stop.signal);
    } finally {
      stop.abort();
      mock.timers.reset();
    }
  }

  /** Moves the fake clock on in steps, letting the promises it releases run between them. */
  async function advance(ms: number, until?: () => boolean) {
    for (let passed = 0; passed < ms; passed += 50) {
      mock.timers.tick(50);
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      if (until?.()) return;
    }
  }

  it('a leader that cannot reach the API server stops leading at its renew deadline, before another replica may take the lease', async () => {
    await onFakeClock(async (stop) => {
      const leases = new FakeLeases();
      const a = replica(leases, 'a', stop);
      await advance(200, () => a.terms.length > 0);
      const b = replica(leases, 'b', stop);
      await advance(3_000);
      assert.equal(a.terms.length, 1);
      assert.equal(b.terms.length, 0, 'b waits while a renews');
      const lastRenew = new Date(leases.lease!.spec!.renewTime!).getTime();
      leases.down.add('a'); // a's calls hang from now on (a partition)
      await advance(20_000, () => b.terms.length > 0);
      const ended = a.terms[0]!.end;
      assert.ok(ended !== undefined, "a's term ended");
      assert.ok(ended - lastRenew <= timing.renewDeadlineMs + 50, `a led ${ended - lastRenew} ms past its last renew (deadline ${timing.renewDeadlineMs})`);
      assert.equal(b.terms.length, 1, 'b took over');
      assert.ok(b.terms[0]!.start > ended, 'never two leaders at once');
      assert.ok(b.terms[0]!.start - lastRenew >= timing.leaseDurationMs, `b waited ${b.terms[0]!.start - lastRenew} ms, a lease duration from the last renew it saw`);
    });
  });

  it('a lease taken by another replica ends the term at the next renew', async () => {
    await onFakeClock(async (stop) => {
      const leases = new FakeLeases();
      const a = replica(leases, 'a', stop);
      await advance(200, () => a.terms.length > 0);
      const at = Date.now();
      leases.takeOver('c');
      await advance(5_000, () => a.terms[0]?.end !== undefined);
      assert.ok(a.terms[0]!.end! - at <= timing.retryPeriodMs + 100, `ended ${a.terms[0]!.end! - at} ms after the lease went`);
      assert.equal(a.elector.isLeader(), false);
    });
  });

  it('a resigned term releases the lease: the other replica leads at its next try, the resigned one sits out its backoff', async () => {
    await onFakeClock(async (stop) => {
      const leases = new FakeLeases();
      const a = replica(leases, 'a', stop);
      await advance(200, () => a.terms.length > 0);
      const b = replica(leases, 'b', stop);
      await advance(2_000);
      const at = Date.now();
      a.terms[0]!.resign('a controller failed', 30_000);
      await advance(5_000, () => b.terms.length > 0);
      assert.equal(b.terms.length, 1, 'b leads');
      assert.ok(b.terms[0]!.start - at <= timing.retryPeriodMs + 200, `b led ${b.terms[0]!.start - at} ms after the release, not a lease duration`);
      assert.equal(leases.lease?.spec?.holderIdentity, 'b');
      // b resigns too (a short backoff): the lease is free, and a may not take it before its 30 s are over.
      b.terms[0]!.resign('test', 2_000);
      await advance(10_000);
      assert.ok(a.terms.length === 1, 'a sits out its backoff');
      const terms = () => a.terms.length + b.terms.length;
      await advance(25_000, () => terms() > 2);
      assert.equal(terms(), 3, 'someone leads again');
      if (a.terms[1]) assert.ok(a.terms[1].start - at >= 30_000, 'a campaigns again only after its backoff');
    });
  });
});
