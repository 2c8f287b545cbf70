// The controller runtime's pure-ish parts: the work queue, the rate limiter, configuration.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, readConfig } from '../../src/config.js';
import { WorkQueue } from '../../src/kube/workqueue.js';
import { TokenBucket } from '../../src/util/rate-limiter.js';
import { sleep, waitFor } from '../../src/util/wait.js';

describe('WorkQueue', () => {
  it('runs one reconcile per key at a time, and once more for an add during it', async () => {
    let running = 0;
    let maxRunning = 0;
    const runs: string[] = [];
    const q = new WorkQueue(
      async (key) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        runs.push(key);
        await sleep(30);
        running--;
      },
      { name: 't', concurrency: 4 },
    );
    const ac = new AbortController();
    const done = q.run(ac.signal);
    q.add('a');
    q.add('a'); // deduplicated while queued
    await sleep(5);
    q.add('a'); // during processing: runs again afterwards
    q.add('a');
    await waitFor('two runs of a', () => runs.length === 2);
    await sleep(50);
    assert.deepEqual(runs, ['a', 'a']);
    assert.equal(maxRunning, 1);
    ac.abort();
    await done;
  });

  it('retries failures with backoff and honours requeue-after', async () => {
    const at: number[] = [];
    let fails = 2;
    const q = new WorkQueue(
      async () => {
        at.push(Date.now());
        if (fails-- > 0) throw new Error('boom');
        if (at.length === 3) return { requeueAfterMs: 50 };
      },
      { name: 't', baseDelayMs: 20 },
    );
    const ac = new AbortController();
    const done = q.run(ac.signal);
    q.add('k');
    await waitFor('4 runs', () => at.length === 4, { timeoutMs: 2000 });
    assert.ok(at[2]! - at[1]! >= at[1]! - at[0]!, 'the backoff grows');
    assert.ok(at[3]! - at[2]! >= 45, 'requeue-after waited');
    ac.abort();
    await done;
  });
});

describe('TokenBucket', () => {
  it('allows a burst of perMinute, then refills over time', () => {
    let now = 0;
    const b = new TokenBucket(3, () => now);
    assert.deepEqual([b.tryTake(), b.tryTake(), b.tryTake(), b.tryTake()], [true, true, true, false]);
    assert.equal(b.waitMs(), 20_000);
    now = 20_000;
    assert.equal(b.tryTake(), true);
  });
});

describe('readConfig', () => {
  it('has defaults', () => {
    const c = readConfig({});
    assert.equal(c.port, 8443);
    assert.equal(c.notReadyGraceMs, 10_000);
    assert.equal(c.quarantineTtlMs, 24 * 3600 * 1000);
    assert.equal(c.serviceAccountUsername, 'system:serviceaccount:sickbay-system:sickbay');
    assert.deepEqual(c.leaderElection, { enabled: true, leaseName: 'sickbay-controller', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 });
  });
  it('names every bad value in one error', () => {
    assert.throws(
      () => readConfig({ SICKBAY_PORT: 'http', SICKBAY_NOT_READY_GRACE: 'soon', SICKBAY_DRY_RUN: 'maybe' }),
      (e: Error) => e instanceof ConfigError && /SICKBAY_PORT="http"/.test(e.message) && /SICKBAY_NOT_READY_GRACE="soon"/.test(e.message) && /SICKBAY_DRY_RUN/.test(e.message),
    );
  });
  it('refuses a renew deadline not shorter than the lease', () => {
    assert.throws(() => readConfig({ SICKBAY_LEASE_DURATION: '10s', SICKBAY_RENEW_DEADLINE: '10s' }), /RENEW_DEADLINE/);
  });
});
