// Kubernetes Events: the recorder in dry run, and the gate that keeps Event writes
// behind the actions that caused them.
import type { EventReason } from '../../src/core/event-reasons.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CoreV1Api } from '@kubernetes/client-node';
import { EventGate, EventRecorder } from '../../src/kube/events.js';
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
