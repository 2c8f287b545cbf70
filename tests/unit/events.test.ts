// Kubernetes Events: the recorder in dry run, and the gate that keeps Event writes
// behind the actions that caused them.
import type { EventReason } from '../../src/core/event-reasons.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CoreV1Api } from '@kubernetes/client-node';
import { EventGate, EventRecorder, Notices, refOf } from '../../src/kube/events.js';
import { sleep } from '../../src/util/wait.js';
import { silentLogger } from '../../src/core/log.js';

describe('EventRecorder in dry run', () => {
  it('writes Would* Events and only those', async () => {
    const written: string[] = [];
    const core = { createNamespacedEvent: async (r: { body: { reason: string } }) => void written.push(r.body.reason) } as unknown as CoreV1Api;
    const rec = new EventRecorder(core, { gate: new EventGate(), host: 'h', log: silentLogger() });
    rec.dryRun = true;
    const ref = { apiVersion: 'v1', kind: 'Pod', name: 'p', namespace: 'n' };
    for (const reason of ['WouldQuarantine', 'SystemicFailure', 'QuarantineSkipped', 'WouldIsolate', 'NotInjected', 'Would', 'Wouldnt']) await rec.record(ref, 'Warning', reason as EventReason, 'm');
    assert.deepEqual(written, ['WouldQuarantine', 'WouldIsolate']);
    rec.dryRun = false;
    await rec.record(ref, 'Warning', 'SystemicFailure', 'm');
    assert.deepEqual(written, ['WouldQuarantine', 'WouldIsolate', 'SystemicFailure']);
  });
});

describe('saying a thing once (Notices, EventRecorder.once)', () => {
  it('once per key until what is said changes, the key is forgotten, or the window passes', () => {
    let now = 0;
    const n = new Notices(100, () => now);
    assert.equal(n.isNew('node-1', 'IsolationSkipped'), true);
    assert.equal(n.isNew('node-1', 'IsolationSkipped'), false);
    assert.equal(n.isNew('node-1', 'NodeIsolated'), true, 'something new about it');
    assert.equal(n.isNew('node-2', 'IsolationSkipped'), true, 'keys apart');
    n.forget('node-1');
    assert.equal(n.isNew('node-1', 'NodeIsolated'), true, 'a new episode');
    n.forget((k) => k !== 'node-1');
    assert.equal(n.isNew('node-2', 'IsolationSkipped'), true);
    assert.equal(n.isNew('w', '', 60_000), true);
    now = 59_999;
    assert.equal(n.isNew('w', '', 60_000), false, 'within the window');
    now = 60_000;
    assert.equal(n.isNew('w', '', 60_000), true, 'the window passed');
  });

  it('stays bounded: past its size the oldest said goes first (a controller meeting a million pods keeps a few thousand)', () => {
    const n = new Notices(3);
    for (const k of ['a', 'b', 'c']) n.isNew(k, 'x');
    n.isNew('a', 'y'); // said again: now the newest
    n.isNew('d', 'x');
    assert.equal(n.size, 3);
    assert.equal(n.isNew('b', 'x'), true, 'b, the oldest, was dropped');
    assert.equal(n.isNew('a', 'y'), false, 'a, said again lately, was kept');
    for (let i = 0; i < 100_000; i++) n.isNew(`pod-${i}`, 'ImagePullNotNode');
    assert.equal(n.size, 3);
  });

  it('EventRecorder.once writes one Event per key and cause', async () => {
    const written: string[] = [];
    const core = { createNamespacedEvent: async (r: { body: { reason: string; message: string } }) => void written.push(r.body.message) } as unknown as CoreV1Api;
    const rec = new EventRecorder(core, { gate: new EventGate(), host: 'h', log: silentLogger() });
    const ref = refOf('Deployment', { name: 'shop', namespace: 'n' });
    assert.equal(await rec.once('n/shop', 'quota', ref, 'Warning', 'ReplacementRefused', 'first'), true);
    assert.equal(await rec.once('n/shop', 'quota', ref, 'Warning', 'ReplacementRefused', 'again'), false);
    assert.equal(await rec.once('n/shop', 'limit-range', ref, 'Warning', 'ReplacementRefused', 'another cause'), true);
    assert.deepEqual(written, ['first', 'another cause']);
  });

  it('refOf names an object the one way: its kind\'s API version, its metadata or a name', () => {
    assert.deepEqual(refOf('Pod', { metadata: { name: 'p', namespace: 'n', uid: 'u' } }), { apiVersion: 'v1', kind: 'Pod', name: 'p', namespace: 'n', uid: 'u' });
    assert.deepEqual(refOf('Node', { name: 'n1' }), { apiVersion: 'v1', kind: 'Node', name: 'n1' });
    assert.deepEqual(refOf('Job', { name: 'j', namespace: 'n' }), { apiVersion: 'batch/v1', kind: 'Job', name: 'j', namespace: 'n' });
    assert.deepEqual(refOf('Lease', { name: 'l', namespace: 's' }).apiVersion, 'coordination.k8s.io/v1');
    assert.deepEqual(refOf('Rollout', { name: 'r', namespace: 'n' }).apiVersion, 'apps/v1', 'a workload kind not listed is named as a workload');
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
