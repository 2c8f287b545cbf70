// The work queue (per-key serialization, requeues, back-off) and the token bucket that
// rate-limits actions: plain in-memory objects, no server.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkQueue } from '../../src/kube/workqueue.js';
import { Metrics } from '../../src/core/metrics.js';
import { TokenBucket } from '../../src/util/rate-limiter.js';
import { sleep, waitFor } from '../../src/util/wait.js';
import { silentLogger } from '../../src/core/log.js';

describe('WorkQueue', () => {
  it('reconciles nothing once canAct says the leadership term is over, even before its signal fires', async () => {
    const done: string[] = [];
    let leading = true;
    const q = new WorkQueue(async (k) => void done.push(k), { name: 't', concurrency: 1, canAct: () => leading, log: silentLogger() });
    const abort = new AbortController();
    const running = q.run(abort.signal);
    q.add('a');
    await waitFor('a reconciled', () => done.includes('a'));
    leading = false;
    q.add('b');
    await sleep(50);
    assert.deepEqual(done, ['a']);
    abort.abort();
    await running;
  });

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
      { name: 't', concurrency: 4, log: silentLogger() },
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
      { name: 't', baseDelayMs: 20, log: silentLogger() },
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

  it('measures how long keys waited for a worker and how long reconciles took', async () => {
    const metrics = new Metrics();
    const q = new WorkQueue(() => sleep(60), { name: 'timed', concurrency: 1, metrics, log: silentLogger() });
    const ac = new AbortController();
    const done = q.run(ac.signal);
    q.add('first'); // a worker is idle: no wait
    q.add('second'); // waits for 'first' to finish
    await waitFor('both reconciled', async () => (await metrics.reconcileDuration.get()).values.some((v) => v.metricName?.endsWith('_count') && v.value === 2), { timeoutMs: 2000 });
    type Sample = { metricName?: string; labels: Record<string, unknown>; value: number };
    const count = async (h: { get(): Promise<{ values: Sample[] }> }, le: number) => (await h.get()).values.find((v) => v.metricName?.endsWith('_bucket') && v.labels.le === le)!.value;
    assert.equal(await count(metrics.queueWait, 0.001), 1, "'first' went straight to a worker");
    assert.equal(await count(metrics.queueWait, 0.05), 1, "'second' waited longer than 50 ms");
    assert.equal(await count(metrics.queueWait, 5), 2);
    assert.equal(await count(metrics.reconcileDuration, 0.05), 0, 'each reconcile took 60 ms');
    assert.equal(await count(metrics.reconcileDuration, 0.1), 2);
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
