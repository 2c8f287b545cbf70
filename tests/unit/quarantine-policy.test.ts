import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { admit, ALERT_REQUEST_TTL_MS, decide, type DecisionInput, type EarlierAction, failedTogether, labelsToStrip, NODE_BACK_SETTLE_MS, parseMaxQuarantined, quarantineTrigger, selectorMatches } from '../../src/quarantine/quarantine-policy.js';
import { nodeAway, wasEverReady } from '../../src/kube/pods.js';
import { TokenBucket } from '../../src/util/rate-limiter.js';

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
    // A replica that started long after the pod failed gives it a full grace from when it saw it.
    assert.deepEqual(quarantineTrigger(p, T0 + 500_000, grace, { seenReady: true, firstSeenNotReady: T0 + 499_000 }), { kind: 'wait', afterMs: 9_000 });
  });
  it('counts the grace on its own clock: a node clock 60 s behind or ahead neither removes nor stretches it (issue 25, item 3)', () => {
    const now = T0 + 100_000;
    // sickbay saw the pod NotReady just now; the kubelet wrote the transition 60 s earlier (its clock behind).
    assert.deepEqual(quarantineTrigger(pod(false, 40_000), now, grace, { seenReady: true, firstSeenNotReady: now }), { kind: 'wait', afterMs: grace });
    // ...and 60 s later (its clock ahead): the grace still counts from when sickbay saw it.
    assert.deepEqual(quarantineTrigger(pod(false, 160_000), now, grace, { seenReady: true, firstSeenNotReady: now }), { kind: 'wait', afterMs: grace });
    const due = quarantineTrigger(pod(false, 160_000), now + grace, grace, { seenReady: true, firstSeenNotReady: now });
    assert.equal(due.kind, 'not-ready');
    assert.equal((due as { failedAt: number }).failedAt, now, 'the failure began when sickbay saw it');
    // Not seen by sickbay at all: the written time, never later than now.
    assert.deepEqual(quarantineTrigger(pod(false, 160_000), now, grace, { seenReady: true }), { kind: 'wait', afterMs: grace });
  });
  it('after the pod\'s node comes back, waits for the pods to report again before their grace starts', () => {
    const now = T0 + 100_000;
    const t = quarantineTrigger(pod(false, 10_000), now, grace, { seenReady: true, firstSeenNotReady: T0 + 10_000, nodeBackAt: now - 1_000 });
    assert.deepEqual(t, { kind: 'wait', afterMs: NODE_BACK_SETTLE_MS - 1_000 + grace });
  });
  it('ignores Ready pods and pods that never were Ready (another controller handles those)', () => {
    assert.deepEqual(quarantineTrigger(pod(true, 0), T0 + 100_000, grace, { seenReady: true }), { kind: 'none' });
    assert.deepEqual(quarantineTrigger(pod(false, 0), T0 + 100_000, grace, { seenReady: false }), { kind: 'none' });
  });
  it('takes a request by annotation half a second after first seeing it, Ready or not; an alert says so', () => {
    const seen = { seenReady: true, requestSeenAt: T0 - 500 };
    assert.deepEqual(quarantineTrigger(pod(true, 0, 0, { 'sickbay.io/isolate': 'leak' }), T0, grace, { seenReady: true }), { kind: 'wait', afterMs: 500 }, 'just seen: the rest of its alert group may still be coming');
    assert.deepEqual(quarantineTrigger(pod(true, 0, 0, { 'sickbay.io/isolate': 'leak' }), T0, grace, seen), { kind: 'annotation', reason: 'leak', since: T0 - 500, failedAt: T0 - 500 });
    assert.equal(quarantineTrigger(pod(true, 0, 0, { 'sickbay.io/isolate': 'alert X' }), T0, grace, seen).kind, 'alert');
    assert.equal((quarantineTrigger(pod(true, 0, 0, { 'sickbay.io/isolate': '' }), T0, grace, seen) as { reason: string }).reason, 'requested by annotation');
  });

  it("an alert's request acts for an hour after sickbay saw it, then is stale: the pod is judged as if it had none; a person's request does not go stale (issue 31)", () => {
    const alert = { 'sickbay.io/isolate': 'alert Latency (firing since 2026-12-01T10:00:00.000Z)' };
    const at = (ms: number) => ({ seenReady: true, requestSeenAt: T0 - ms });
    assert.equal(quarantineTrigger(pod(true, 0, 0, alert), T0, grace, at(ALERT_REQUEST_TTL_MS - 1000)).kind, 'alert');
    assert.deepEqual(quarantineTrigger(pod(true, 0, 0, alert), T0, grace, at(ALERT_REQUEST_TTL_MS)), { kind: 'none' }, 'a Ready pod with a stale alert request is left alone');
    assert.ok(['wait', 'not-ready'].includes(quarantineTrigger(pod(false, 0, 0, alert), T0, grace, at(ALERT_REQUEST_TTL_MS)).kind), 'a NotReady one is still judged by its own readiness (its grace)');
    assert.equal(quarantineTrigger(pod(true, 0, 0, { 'sickbay.io/isolate': 'leak' }), T0, grace, at(10 * ALERT_REQUEST_TTL_MS)).kind, 'annotation');
  });
});

describe('nodeAway', () => {
  const node = (ready: string, taints: Array<{ key: string; effect: string }> = []): V1Node => ({ metadata: { name: 'n1' }, spec: { taints }, status: { conditions: [{ type: 'Ready', status: ready, reason: 'R' }] } });
  const cases: Array<[string, V1Node | undefined, RegExp | undefined]> = [
    ['Ready and untainted: judge its pods', node('True'), undefined],
    ['NotReady', node('False'), /node n1 is NotReady \(R\)/],
    ['not reporting', node('Unknown'), /not reporting/],
    ['unreachable taint (the node lifecycle controller)', node('True', [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }]), /unreachable:NoExecute/],
    ['isolated by sickbay', node('True', [{ key: 'sickbay.io/isolated', effect: 'NoExecute' }]), /sickbay.io\/isolated/],
    ['not in the cache', undefined, /not known/],
    ['another taint is not about the node being away', node('True', [{ key: 'dedicated', effect: 'NoSchedule' }]), undefined],
  ];
  for (const [name, n, want] of cases) it(name, () => (want ? assert.match(nodeAway('n1', n) ?? '', want) : assert.equal(nodeAway('n1', n), undefined)));
  it('an unscheduled pod has no node to wait for', () => assert.equal(nodeAway(undefined, undefined), undefined));
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
  const base: DecisionInput = { owner: { kind: 'Deployment', name: 'web' }, ownerPods: 4, ownerFailing: 1, quarantinedForOwner: 0, maxQuarantined: 1, systemicRatio: 0.5 };
  /** An earlier action `agoS` seconds before this pod began failing (at T0). */
  const earlier = (agoS: number, o: Partial<EarlierAction> = {}): EarlierAction => ({ at: T0 - agoS * 1000 + 500, failedAt: T0 - agoS * 1000, systemic: false, replaced: true, ...o });
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
    ['back-off: K actions within the window, no more', { earlier: [1, 2, 3, 4, 5].map((m) => earlier(m * 60)), quarantinedForOwner: 1, backoffAfter: 5, backoffWindowMs: 900_000 }, 'skip', 'backoff'],
    ['back-off wins over a systemic failure', { earlier: [1, 2, 3, 4, 5].map((m) => earlier(m * 60)), backoffAfter: 5, ownerFailing: 3 }, 'skip', 'backoff'],
    ['one action short of the back-off: act', { earlier: [1, 2, 3, 4].map((m) => earlier(m * 60)), quarantinedForOwner: 1, backoffAfter: 5 }, 'delete'],
    ['StatefulSet pods are left alone', { owner: { kind: 'StatefulSet', name: 'db' } }, 'skip', 'unsupported-owner'],
    ['DaemonSet pods are left alone', { owner: { kind: 'DaemonSet', name: 'agent' } }, 'skip', 'unsupported-owner'],
    ['Job pods are left alone', { owner: { kind: 'Job', name: 'batch' } }, 'skip', 'unsupported-owner'],
    ['a bare pod is quarantined (out of its Services)', { owner: { kind: 'Pod', name: 'p' }, ownerPods: 1 }, 'quarantine'],
    ['a single-replica Deployment is not systemic by itself', { ownerPods: 1, ownerFailing: 1 }, 'quarantine'],
    // The pods a systemic failure took out stay part of it, however their replacements fare:
    // 3 of 4 failed at once, one was kept, its replacement is Ready; the other two are not deleted.
    ['a systemic failure stays systemic for the pods that failed with it', { ownerPods: 4, ownerFailing: 2, failedAt: T0, earlier: [earlier(0, { systemic: true })], quarantinedForOwner: 1 }, 'skip', 'systemic'],
    ['a later failure is not part of an earlier systemic one whose replacement works', { ownerPods: 4, ownerFailing: 1, failedAt: T0, earlier: [earlier(300, { systemic: true })], quarantinedForOwner: 1 }, 'delete'],
  ];
  for (const [name, over, action, reason] of cases) {
    it(name, () => {
      const d = decide({ ...base, failedAt: T0, ...over });
      assert.equal(d.action, action, JSON.stringify(d));
      if (reason) assert.equal((d as { reason: string }).reason, reason);
    });
  }

  // Issue 25: 1, 2, 3 and 10 replicas, this pod the only one of them failing now, with 0-3
  // earlier actions (the first quarantined, the rest evicted), all minutes before. Their
  // replacements Ready: each is a failure of its own, so the pod is quarantined while the
  // quota (1) is free, else evicted and replaced. Not Ready yet: they count as failing with it.
  const table: Array<[replicas: number, earlierActions: number, replaced: boolean, want: string]> = [];
  for (const replicas of [1, 2, 3, 10]) {
    for (const k of [0, 1, 2, 3]) {
      table.push([replicas, k, true, k === 0 ? 'quarantine' : 'delete']);
      if (k === 0) continue;
      // ownerPods = replicas + k, failing = 1 + k: systemic above half, and the quota is used.
      table.push([replicas, k, false, (1 + k) / (replicas + k) > 0.5 ? 'skip' : 'delete']);
    }
  }
  for (const [replicas, k, replaced, want] of table) {
    it(`${replicas} replica(s), ${k} earlier action(s) minutes before, replacements ${replaced ? 'Ready' : 'not Ready yet'}: ${want}`, () => {
      const d = decide({ ...base, ownerPods: replicas, ownerFailing: 1, failedAt: T0, earlier: Array.from({ length: k }, (_, i) => earlier(120 * (i + 1), { replaced })), quarantinedForOwner: Math.min(k, 1), backoffAfter: 5 });
      assert.equal(d.action, want, JSON.stringify(d));
    });
  }
  it('the playground sequence: shop (2 replicas) has one pod quarantined and replaced; minutes later the other fails: evicted, not systemic', () => {
    const d = decide({ ...base, ownerPods: 2, ownerFailing: 1, failedAt: T0, earlier: [earlier(180)], quarantinedForOwner: 1, backoffAfter: 5 });
    assert.deepEqual(d.action, 'delete');
    // Before the change: the earlier pod counted as failing together for the whole back-off window.
    assert.equal(decide({ ...base, ownerPods: 2, ownerFailing: 1, failedAt: T0, earlier: [earlier(180, { replaced: false })], quarantinedForOwner: 1 }).action, 'skip');
  });
  it('failedTogether: within the minute of a systemic failure, or while the replacement is not Ready', () => {
    assert.equal(failedTogether(earlier(30, { systemic: true }), T0), true);
    assert.equal(failedTogether(earlier(30), T0), false, 'not systemic, replaced: a failure of its own');
    assert.equal(failedTogether(earlier(90, { systemic: true }), T0), false, 'a systemic failure 90 s before, replaced: another failure');
    assert.equal(failedTogether(earlier(900, { replaced: false }), T0), true, 'its replacement never became Ready');
  });
  it('says so when it keeps a scene of a systemic failure', () => {
    const d = decide({ ...base, ownerFailing: 3 });
    assert.match((d as { systemic?: string }).systemic ?? '', /3 of 4 pods of Deployment\/web are failing together.*keeps one failing pod quarantined for diagnosis and deletes nothing/);
    assert.equal((decide(base) as { systemic?: string }).systemic, undefined);
  });
  it('takes a rate token only for an action it performs (issue 25, item 7)', () => {
    const bucket = new TokenBucket(1, () => T0);
    const take = () => bucket.tryTake();
    // Five skips (a StatefulSet, a systemic failure, a back-off) spend nothing...
    for (const over of [{ owner: { kind: 'StatefulSet', name: 'db' } }, { ownerFailing: 3, quarantinedForOwner: 1 }, { earlier: [1, 2, 3, 4, 5].map((m) => earlier(m * 60)), backoffAfter: 5 }]) {
      for (let i = 0; i < 2; i++) assert.equal(admit(decide({ ...base, ...over }), take).action, 'skip');
    }
    // ...so the one token of the minute is there for the pod sickbay does act on,
    assert.equal(admit(decide(base), take).action, 'quarantine');
    // and the next action waits for the rate.
    assert.deepEqual(admit(decide(base), take), { action: 'skip', reason: 'rate-limited', message: 'the cluster-wide quarantine rate limit is reached; retrying later' });
  });

  it('parses the max-quarantined annotation, rejecting garbage', () => {
    assert.deepEqual(parseMaxQuarantined('2', 1), { value: 2 });
    assert.deepEqual(parseMaxQuarantined(undefined, 1), { value: 1 });
    assert.equal(parseMaxQuarantined('two', 1).value, 1);
    assert.match(parseMaxQuarantined('-1', 1).error!, /integer from 0/);
  });
});
