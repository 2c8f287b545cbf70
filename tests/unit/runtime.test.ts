// The controller runtime's pure-ish parts: the work queue, the rate limiter, configuration,
// the informer's indexes (filled by writeThrough: no server needed) and the logger.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ConfigError, readConfig } from '../../src/config.js';
import { Writable } from 'node:stream';
import { type CoreV1Api, KubeConfig, type V1Pod, type V1ReplicaSet } from '@kubernetes/client-node';
import { printable } from '../../src/commands/status.js';
import { ClusterCache } from '../../src/controllers/cluster-cache.js';
import { Index, Informer, type KubeObject } from '../../src/kube/informer.js';
import { WorkQueue } from '../../src/kube/workqueue.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import { EventGate, EventRecorder } from '../../src/kube/events.js';
import { TokenBucket } from '../../src/util/rate-limiter.js';
import { sleep, waitFor } from '../../src/util/wait.js';

describe('WorkQueue', () => {
  it('reconciles nothing once canAct says the leadership term is over, even before its signal fires', async () => {
    const done: string[] = [];
    let leading = true;
    const q = new WorkQueue(async (k) => void done.push(k), { name: 't', concurrency: 1, canAct: () => leading });
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

  it('measures how long keys waited for a worker and how long reconciles took', async () => {
    const metrics = new Metrics();
    const q = new WorkQueue(() => sleep(60), { name: 'timed', concurrency: 1, metrics });
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

describe('EventRecorder in dry run', () => {
  it('writes Would* Events and only those', async () => {
    const written: string[] = [];
    const core = { createNamespacedEvent: async (r: { body: { reason: string } }) => void written.push(r.body.reason) } as unknown as CoreV1Api;
    const rec = new EventRecorder(core, 'sickbay', undefined, 'h', new EventGate());
    rec.dryRun = true;
    const ref = { apiVersion: 'v1', kind: 'Pod', name: 'p', namespace: 'n' };
    for (const reason of ['WouldQuarantine', 'SystemicFailure', 'QuarantineSkipped', 'WouldIsolate', 'NotInjected', 'Would', 'Wouldnt']) await rec.record(ref, 'Warning', reason, 'm');
    assert.deepEqual(written, ['WouldQuarantine', 'WouldIsolate']);
    rec.dryRun = false;
    await rec.record(ref, 'Warning', 'SystemicFailure', 'm');
    assert.deepEqual(written, ['WouldQuarantine', 'WouldIsolate', 'SystemicFailure']);
  });
});

describe('EventGate', () => {
  it('keeps at most `limit` writes in flight, in order, and drops beyond the queue bound', async () => {
    const gate = new EventGate(2, 3);
    let running = 0;
    let maxRunning = 0;
    const order: number[] = [];
    const write = (i: number) => async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(10);
      order.push(i);
      running--;
    };
    // 2 run, 3 wait, the 6th and 7th are dropped at once.
    const results = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((i) => gate.run(write(i))));
    assert.deepEqual(results, [true, true, true, true, true, false, false]);
    assert.equal(maxRunning, 2);
    assert.deepEqual(order, [1, 2, 3, 4, 5]);
    assert.equal(gate.dropped, 2);
    // Drained: the gate takes writes again.
    assert.equal(await gate.run(write(8)), true);
  });

  it('frees the slot when a write throws', async () => {
    const gate = new EventGate(1, 10);
    await assert.rejects(gate.run(async () => { throw new Error('boom'); }), /boom/);
    let ran = false;
    assert.equal(await gate.run(async () => { ran = true; }), true);
    assert.equal(ran, true);
  });

  it('says when every queued write is done, or that it gave up waiting', async () => {
    const gate = new EventGate(1, 10);
    assert.equal(await gate.idle(10), true, 'nothing queued');
    const written: number[] = [];
    for (const i of [1, 2, 3]) void gate.run(async () => { await sleep(20); written.push(i); });
    assert.equal(await gate.idle(5), false, 'three writes of 20 ms are not done in 5 ms');
    assert.equal(await gate.idle(1000), true);
    assert.deepEqual(written, [1, 2, 3], 'idle only once the queue, not just the first write, is done');
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

describe('Informer indexes', () => {
  const pod = (name: string, rv: string, ns: string, owner?: string): KubeObject & { owner?: string } => ({ metadata: { name, namespace: ns, resourceVersion: rv }, owner });
  it('follow every change to the cache, including writeThrough', () => {
    const inf = new Informer<KubeObject & { owner?: string }>(new KubeConfig(), { resource: 'pods', path: '/api/v1/pods' });
    inf.writeThrough(pod('a', '1', 'shop', 'rs-1'));
    inf.addIndex('owner', (p) => p.owner); // added late: indexes what is already cached
    inf.writeThrough(pod('b', '1', 'shop', 'rs-1'));
    inf.writeThrough(pod('c', '1', 'shop'));
    assert.deepEqual(inf.byIndex('owner', 'rs-1').map((p) => p.metadata?.name).sort(), ['a', 'b']);
    inf.writeThrough(pod('a', '2', 'shop', 'rs-2')); // released and adopted elsewhere
    assert.deepEqual(inf.byIndex('owner', 'rs-1').map((p) => p.metadata?.name), ['b']);
    assert.deepEqual(inf.byIndex('owner', 'rs-2').map((p) => p.metadata?.name), ['a']);
    inf.writeThrough(pod('a', '1', 'shop', 'rs-1')); // older than the cached version: ignored
    assert.deepEqual(inf.byIndex('owner', 'rs-2').map((p) => p.metadata?.name), ['a']);
    assert.deepEqual(inf.byIndex('owner', 'nobody'), []);
    assert.throws(() => inf.byIndex('nope', 'x'), /no index nope/);
  });
  it('Index drops a key from its old value', () => {
    const i = new Index();
    i.set('k', 'v1');
    i.set('k', 'v2');
    i.set('j', 'v2');
    assert.deepEqual([...i.keys('v1')], []);
    assert.deepEqual([...i.keys('v2')].sort(), ['j', 'k']);
    i.set('k', undefined);
    assert.deepEqual([...i.keys('v2')], ['j']);
  });
});

describe('ClusterCache lookups', () => {
  const rs = (name: string, deployment?: string): V1ReplicaSet => ({
    metadata: { name, namespace: 'shop', resourceVersion: '1', ownerReferences: deployment ? [{ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment, uid: 'd', controller: true }] : [] },
  });
  const pod = (name: string, rv: string, o: { rs?: string; sts?: string; quarantinedFor?: string; ready?: boolean } = {}): V1Pod => ({
    metadata: {
      name,
      namespace: 'shop',
      resourceVersion: rv,
      uid: `uid-${name}`,
      labels: o.quarantinedFor ? { 'sickbay.io/status': 'quarantined' } : { app: 'web' },
      annotations: o.quarantinedFor ? { 'sickbay.io/owner': o.quarantinedFor } : {},
      ownerReferences: o.rs ? [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: o.rs, uid: 'r', controller: true }] : o.sts ? [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: o.sts, uid: 's', controller: true }] : undefined,
    },
    status: { conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  });
  it('never counts the system namespaces or its own as opted in, even when labelled', () => {
    const c = new ClusterCache(new KubeConfig(), { resyncMs: 0, ownNamespace: 'sickbay-system' });
    for (const name of ['kube-system', 'kube-public', 'kube-node-lease', 'sickbay-system', 'shop']) {
      c.namespaces.writeThrough({ metadata: { name, labels: { 'sickbay.io/injection': 'enabled' } } });
    }
    assert.deepEqual(['kube-system', 'kube-public', 'kube-node-lease', 'sickbay-system', 'shop'].filter((n) => c.isOptedIn(n)), ['shop']);
  });
  it("finds a workload's pods across its ReplicaSets, and a namespace's quarantined pods", () => {
    const c = new ClusterCache(new KubeConfig(), { resyncMs: 0 });
    c.replicaSets.writeThrough(rs('web-1', 'web'));
    c.replicaSets.writeThrough(rs('web-2', 'web')); // mid-rollout
    c.replicaSets.writeThrough(rs('bare'));
    c.pods.writeThrough(pod('w1', '1', { rs: 'web-1' }));
    c.pods.writeThrough(pod('w2', '1', { rs: 'web-2' }));
    c.pods.writeThrough(pod('b1', '1', { rs: 'bare' }));
    c.pods.writeThrough(pod('db-0', '1', { sts: 'db' }));
    c.pods.writeThrough(pod('lone', '1'));
    const names = (ps: V1Pod[]) => ps.map((p) => p.metadata?.name).sort();
    assert.deepEqual(names(c.inServicePodsOf('shop', { kind: 'Deployment', name: 'web' })), ['w1', 'w2']);
    assert.deepEqual(names(c.inServicePodsOf('shop', { kind: 'ReplicaSet', name: 'bare' })), ['b1']);
    assert.deepEqual(names(c.inServicePodsOf('shop', { kind: 'StatefulSet', name: 'db' })), ['db-0']);
    assert.deepEqual(names(c.inServicePodsOf('shop', { kind: 'Pod', name: 'lone' })), ['lone']);
    assert.deepEqual(names(c.inServicePodsOf('other', { kind: 'Deployment', name: 'web' })), []);
    // Quarantined (the ReplicaSet has released it): out of service, in the namespace's quarantine.
    c.pods.writeThrough(pod('w1', '2', { quarantinedFor: 'Deployment/web' }));
    assert.deepEqual(names(c.inServicePodsOf('shop', { kind: 'Deployment', name: 'web' })), ['w2']);
    assert.deepEqual(names(c.quarantinedIn('shop')), ['w1']);
    assert.deepEqual(names(c.podsIn('shop')), ['b1', 'db-0', 'lone', 'w1', 'w2']);
  });
});

describe('createLogger', () => {
  it('writes lines at and above its level, from children too, and nothing below', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = createLogger('info', stream);
    const child = log.child({ component: 'x' });
    child.debug('hidden');
    child.info('shown', { pod: 'shop/a' });
    log.warn('also shown');
    log.level = 'debug';
    child.debug('now shown');
    await sleep(10);
    const messages = lines.map((l) => JSON.parse(l) as { message: string; component?: string; pod?: string });
    assert.deepEqual(messages.map((m) => m.message), ['shown', 'also shown', 'now shown']);
    assert.equal(messages[0]!.component, 'x');
    assert.equal(messages[0]!.pod, 'shop/a');
  });
});

describe('the process guard of serve and agent', () => {
  it('logs an unhandled rejection as one JSON line and exits 1 instead of running on', () => {
    const log = fileURLToPath(new URL('../../src/log.ts', import.meta.url));
    const script = `import { exitOnUnhandled } from ${JSON.stringify(log)}; exitOnUnhandled('serve'); Promise.reject(new Error('lost write')); setTimeout(() => {}, 10_000);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 1);
    const line = JSON.parse(r.stderr.trim().split('\n').at(-1)!);
    assert.equal(line.level, 'error');
    assert.match(line.message, /unhandled promise rejection/);
    assert.match(line.error, /lost write/);
  });
});

describe('sickbay status output', () => {
  it('shows control characters and bidi overrides from the cluster as escapes, never raw', () => {
    assert.equal(printable('deadlock\x1b[2J\r\nsickbay: all fine\u202e'), 'deadlock\\u001b[2J\\u000d\\u000asickbay: all fine\\u202e');
    assert.equal(printable('überlastet — 50 %'), 'überlastet — 50 %');
  });
});
