import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { decide, type DecisionInput, labelsToStrip, parseMaxQuarantined, quarantineTrigger, selectorMatches } from '../../src/quarantine/quarantine-policy.js';
import { wasEverReady } from '../../src/kube/pods.js';

const T0 = Date.parse('2026-11-22T10:00:00Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();
function pod(ready: boolean, readyAt: number, initializedAt = 0, annotations: Record<string, string> = {}): V1Pod {
  return {
    metadata: { name: 'p', namespace: 'n', uid: 'u', annotations },
    status: {
      startTime: new Date(iso(0)),
      conditions: [
        { type: 'Initialized', status: 'True', lastTransitionTime: new Date(iso(initializedAt)) },
        { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: new Date(iso(readyAt)) },
      ],
    },
  };
}

describe('wasEverReady', () => {
  const cases: Array<[string, V1Pod, boolean, boolean]> = [
    ['Ready now', pod(true, 5_000), false, true],
    ['NotReady since start (never Ready)', pod(false, 0), false, false],
    ['NotReady since before init containers finished', pod(false, 0, 30_000), false, false],
    ['NotReady long after init: was Ready in between', pod(false, 120_000), false, true],
    ['seen Ready by sickbay', pod(false, 0), true, true],
    ['NotReady one second after init (second resolution): was Ready', pod(false, 1_000), false, true],
    ['no conditions at all', { metadata: {}, status: {} }, false, false],
  ];
  for (const [name, p, seen, want] of cases) it(name, () => assert.equal(wasEverReady(p, seen), want));
});

describe('quarantineTrigger', () => {
  const grace = 10_000;
  it('waits out the grace period, then triggers', () => {
    const p = pod(false, 60_000);
    assert.deepEqual(quarantineTrigger(p, T0 + 65_000, grace, { seenReady: true }), { kind: 'wait', afterMs: 5_000 });
    const t = quarantineTrigger(p, T0 + 71_000, grace, { seenReady: true });
    assert.equal(t.kind, 'not-ready');
    assert.equal((t as { since: number }).since, T0 + 70_000, 'time-to-quarantine counts from the end of the grace period');
  });
  it('counts time-to-quarantine from when its watch saw NotReady, if that is later', () => {
    // With no grace, the condition's time (whole seconds) is earlier than the watch event.
    const p = pod(false, 60_000);
    const seen = T0 + 60_700;
    const t = quarantineTrigger(p, T0 + 60_900, 0, { seenReady: true, firstSeenNotReady: seen });
    assert.equal((t as { since: number }).since, seen);
    // A replica that started long after the pod failed counts from when it saw it.
    const late = quarantineTrigger(p, T0 + 500_000, grace, { seenReady: true, firstSeenNotReady: T0 + 499_000 });
    assert.equal((late as { since: number }).since, T0 + 499_000);
  });
  it('ignores Ready pods and pods that never were Ready (another controller handles those)', () => {
    assert.deepEqual(quarantineTrigger(pod(true, 0), T0 + 100_000, grace, { seenReady: true }), { kind: 'none' });
    assert.deepEqual(quarantineTrigger(pod(false, 0), T0 + 100_000, grace, { seenReady: false }), { kind: 'none' });
  });
  it('takes a request by annotation half a second after first seeing it, Ready or not; an alert says so', () => {
    const seen = { seenReady: true, requestSeenAt: T0 - 500 };
    assert.deepEqual(quarantineTrigger(pod(true, 0, 0, { 'sickbay.io/isolate': 'leak' }), T0, grace, { seenReady: true }), { kind: 'wait', afterMs: 500 }, 'just seen: the rest of its alert group may still be coming');
    assert.deepEqual(quarantineTrigger(pod(true, 0, 0, { 'sickbay.io/isolate': 'leak' }), T0, grace, seen), { kind: 'annotation', reason: 'leak', since: T0 - 500 });
    assert.equal(quarantineTrigger(pod(true, 0, 0, { 'sickbay.io/isolate': 'alert X' }), T0, grace, seen).kind, 'alert');
    assert.equal((quarantineTrigger(pod(true, 0, 0, { 'sickbay.io/isolate': '' }), T0, grace, seen) as { reason: string }).reason, 'requested by annotation');
  });
});

describe('labelsToStrip', () => {
  const labels = { app: 'web', 'pod-template-hash': 'abc', tier: 'web', team: 'a', 'sickbay.io/x': 'y' };
  const cases: Array<[string, Parameters<typeof labelsToStrip>[1], string[]]> = [
    ['ReplicaSet selector and Service selector', [{ matchLabels: { app: 'web', 'pod-template-hash': 'abc' } }, { matchLabels: { tier: 'web' } }], ['app', 'pod-template-hash', 'tier']],
    ['a selector that does not match strips nothing', [{ matchLabels: { app: 'other' } }], []],
    ['In and Exists keys; NotIn and DoesNotExist cannot be broken by removal', [{ matchExpressions: [{ key: 'team', operator: 'In', values: ['a'] }, { key: 'tier', operator: 'Exists' }, { key: 'canary', operator: 'DoesNotExist' }, { key: 'app', operator: 'NotIn', values: ['x'] }] }], ['team', 'tier']],
    ['never a sickbay key', [{ matchLabels: { 'sickbay.io/x': 'y' } }], []],
    ['an empty selector selects nothing', [{}], []],
  ];
  for (const [name, selectors, want] of cases) it(name, () => assert.deepEqual(labelsToStrip(labels, selectors), want));
  it('after stripping, no selector matches', () => {
    const sel = [{ matchLabels: { app: 'web', 'pod-template-hash': 'abc' } }, { matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }] }];
    const left = Object.fromEntries(Object.entries(labels).filter(([k]) => !labelsToStrip(labels, sel).includes(k)));
    assert.ok(sel.every((s) => !selectorMatches(left, s)));
  });
});

describe('decide', () => {
  const base: DecisionInput = { owner: { kind: 'Deployment', name: 'web' }, ownerPods: 4, ownerFailing: 1, quarantinedForOwner: 0, maxQuarantined: 1, systemicRatio: 0.5, rateAllowed: true };
  const cases: Array<[string, Partial<DecisionInput>, string, string?]> = [
    ['first failing pod: quarantine', {}, 'quarantine'],
    ['quota used: delete instead', { quarantinedForOwner: 1 }, 'delete'],
    ['quota of 2 with 1 kept: quarantine', { quarantinedForOwner: 1, maxQuarantined: 2 }, 'quarantine'],
    ['max 0: always delete', { maxQuarantined: 0 }, 'delete'],
    ['half failing is not over the ratio', { ownerFailing: 2 }, 'quarantine'],
    ['3 of 4 failing: systemic, the first one is kept as the scene', { ownerFailing: 3 }, 'quarantine'],
    ['systemic with the quota used: nothing, and never a delete', { ownerFailing: 3, quarantinedForOwner: 1 }, 'skip', 'systemic'],
    ['systemic wins over the quota', { ownerFailing: 3, quarantinedForOwner: 5 }, 'skip', 'systemic'],
    ['systemic and max 0: nothing', { ownerFailing: 3, maxQuarantined: 0 }, 'skip', 'systemic'],
    ['systemic and rate-limited: nothing', { ownerFailing: 3, rateAllowed: false }, 'skip', 'systemic'],
    ['rate limit', { rateAllowed: false }, 'skip', 'rate-limited'],
    ['back-off: K actions within the window, no more', { recentActions: 5, backoffAfter: 5, backoffWindowMs: 900_000 }, 'skip', 'backoff'],
    ['back-off wins over a systemic failure', { recentActions: 5, backoffAfter: 5, ownerFailing: 3 }, 'skip', 'backoff'],
    ['one action short of the back-off: act', { recentActions: 4, backoffAfter: 5 }, 'quarantine'],
    ['StatefulSet pods are left alone', { owner: { kind: 'StatefulSet', name: 'db' } }, 'skip', 'unsupported-owner'],
    ['DaemonSet pods are left alone', { owner: { kind: 'DaemonSet', name: 'agent' } }, 'skip', 'unsupported-owner'],
    ['Job pods are left alone', { owner: { kind: 'Job', name: 'batch' } }, 'skip', 'unsupported-owner'],
    ['a bare pod is quarantined (out of its Services)', { owner: { kind: 'Pod', name: 'p' }, ownerPods: 1 }, 'quarantine'],
    ['a single-replica Deployment is not systemic by itself', { ownerPods: 1, ownerFailing: 1 }, 'quarantine'],
  ];
  for (const [name, over, action, reason] of cases) {
    it(name, () => {
      const d = decide({ ...base, ...over });
      assert.equal(d.action, action);
      if (reason) assert.equal((d as { reason: string }).reason, reason);
    });
  }
  it('says so when it keeps a scene of a systemic failure', () => {
    const d = decide({ ...base, ownerFailing: 3 });
    assert.match((d as { systemic?: string }).systemic ?? '', /3 of 4 pods of Deployment\/web are failing together.*keeps one failing pod quarantined for diagnosis and deletes nothing/);
    assert.equal((decide(base) as { systemic?: string }).systemic, undefined);
  });

  it('parses the max-quarantined annotation, rejecting garbage', () => {
    assert.deepEqual(parseMaxQuarantined('2', 1), { value: 2 });
    assert.deepEqual(parseMaxQuarantined(undefined, 1), { value: 1 });
    assert.equal(parseMaxQuarantined('two', 1).value, 1);
    assert.match(parseMaxQuarantined('-1', 1).error!, /integer from 0/);
  });
});
