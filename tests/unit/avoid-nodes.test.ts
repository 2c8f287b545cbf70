// Golden files for the affinity merge (tests/golden/avoid-nodes/), and the pure parts of
// node avoidance: the record, feasibility.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Node, V1Pod, V1Volume } from '@kubernetes/client-node';
import { podForCache } from '../../src/kube/cluster-cache.js';
import { excludeNodes, feasibleNodes, liveEntries, parseAvoidRecord } from '../../src/never-ready/avoid-nodes.js';
import { imagePullFailure, neverReadyCause, neverReadyClockStart } from '../../src/never-ready/never-ready-controller.js';
import { goldenFiles } from '../support/golden.js';

const AVOID = ['kwok-node-2', 'kwok-node-0'];

goldenFiles({
  suite: 'avoid-nodes',
  title: 'affinity merge golden files',
  minCases: 5,
  run: (pod) => excludeNodes(pod, AVOID),
  again: (out) => assert.deepEqual(excludeNodes(out, AVOID), out, 'applying it again changes nothing'),
});

const node = (name: string, o: { labels?: Record<string, string>; ready?: boolean; taints?: V1Node['spec'] extends infer S ? (S extends { taints?: infer T } ? T : never) : never; unschedulable?: boolean } = {}): V1Node => ({
  metadata: { name, labels: { 'kubernetes.io/hostname': name, ...o.labels } },
  spec: { taints: o.taints, unschedulable: o.unschedulable },
  status: { conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
});

describe('feasibleNodes', () => {
  const nodes = [
    node('a', { labels: { pool: 'general' } }),
    node('b', { labels: { pool: 'spot' } }),
    node('c', { ready: false }),
    node('d', { unschedulable: true }),
    node('e', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] }),
    node('f', { taints: [{ key: 'sickbay.io/isolated', effect: 'NoExecute' }] }),
    node('g', { taints: [{ key: 'soft', effect: 'PreferNoSchedule' }] }),
  ];
  const cases: Array<[string, V1Pod['spec'], string[]]> = [
    ['ready, schedulable, untainted (PreferNoSchedule is fine)', { containers: [] }, ['a', 'b', 'g']],
    ['a toleration admits the tainted node', { containers: [], tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }] }, ['a', 'b', 'e', 'g']],
    ['Exists with no key tolerates everything', { containers: [], tolerations: [{ operator: 'Exists' }] }, ['a', 'b', 'e', 'f', 'g']],
    ['node selector', { containers: [], nodeSelector: { pool: 'spot' } }, ['b']],
    [
      'required affinity: terms are ORed',
      {
        containers: [],
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'In', values: ['general'] }] }, { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['g'] }] }] } } },
      },
      ['a', 'g'],
    ],
  ];
  for (const [name, spec, want] of cases) it(name, () => assert.deepEqual(feasibleNodes({ spec }, nodes), want));
});

describe('the avoid-nodes record', () => {
  it('parses, and reports garbage instead of throwing', () => {
    assert.deepEqual(parseAvoidRecord('{"a":"2026-11-22T10:00:00Z"}'), { record: { a: '2026-11-22T10:00:00Z' } });
    for (const bad of ['nope', '[]', '{"a":3}', '{"a":"yesterday"}']) {
      const r = parseAvoidRecord(bad);
      assert.deepEqual(r.record, {});
      assert.match(r.error!, /must be a JSON object of node -> RFC 3339 time/);
    }
  });
  it('expires entries after the TTL', () => {
    const now = Date.parse('2026-11-22T10:00:00Z');
    assert.deepEqual(liveEntries({ old: '2026-11-22T08:59:00Z', fresh: '2026-11-22T09:30:00Z' }, now, 3600_000), ['fresh']);
  });
});

describe('what is never the node’s fault', () => {
  const base = (status: V1Pod['status']): V1Pod => ({ metadata: { name: 'p', creationTimestamp: new Date('2026-11-30T10:00:00Z') }, spec: { containers: [{ name: 'app' }] }, status });
  const waiting = (name: string, reason: string, image = 'registry.example/x:1') => ({ name, image, imageID: '', ready: false, restartCount: 0, state: { waiting: { reason } } });

  it('a container that cannot pull its image, sickbay’s init container named apart', () => {
    assert.deepEqual(imagePullFailure(base({ initContainerStatuses: [waiting('sickbay-shim-install', 'ImagePullBackOff', 'private.example/sickbay-shim:0.1.0')] })), {
      container: 'sickbay-shim-install', reason: 'ImagePullBackOff', image: 'private.example/sickbay-shim:0.1.0', shim: true,
    });
    assert.equal(imagePullFailure(base({ containerStatuses: [waiting('app', 'ErrImagePull')] }))?.shim, false);
    assert.equal(imagePullFailure(base({ containerStatuses: [waiting('app', 'InvalidImageName')] }))?.reason, 'InvalidImageName');
    // A node that cannot start containers is the node's business: still counted.
    assert.equal(imagePullFailure(base({ containerStatuses: [waiting('app', 'ContainerCreating')] })), undefined);
    assert.equal(imagePullFailure(base({ containerStatuses: [waiting('app', 'CreateContainerError')] })), undefined);
    assert.equal(imagePullFailure(base(undefined)), undefined);
  });

  it('an image volume that cannot be pulled is named from the kubelet’s message, sickbay’s told apart by its volume (through the cache too)', () => {
    const shim = 'private.example/sickbay-shim:0.1.0';
    const failing = (image: string, volumes: V1Volume[]): V1Pod => ({
      ...base({ containerStatuses: [{ ...waiting('app', 'ImagePullBackOff', 'registry.example/app:1'), state: { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}": ErrImagePull: failed to resolve reference "${image}"` } } }] }),
      spec: { containers: [{ name: 'app' }], volumes },
    });
    const sickbays = failing(shim, [{ name: 'sickbay-shim', emptyDir: {} }, { name: 'sickbay-shim-bin', image: { reference: shim } }]);
    for (const pod of [sickbays, podForCache(sickbays)]) {
      assert.deepEqual(imagePullFailure(pod), { container: 'app', reason: 'ImagePullBackOff', image: shim, shim: true });
    }
    const theirs = failing('registry.example/models:7', [{ name: 'models', image: { reference: 'registry.example/models:7' } }, { name: 'sickbay-shim-bin', image: { reference: shim } }]);
    assert.deepEqual(imagePullFailure(podForCache(theirs)), { container: 'app', reason: 'ImagePullBackOff', image: 'registry.example/models:7', shim: false }, 'the pod’s own image volume is the pod’s');
    // The cache keeps the message and sickbay's volume only while a pull fails.
    const running: V1Pod = { ...sickbays, status: { containerStatuses: [{ name: 'app', image: 'registry.example/app:1', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] } };
    assert.equal(podForCache(running).spec?.volumes, undefined);
  });

  it('the never-Ready clock starts when sickbay’s init container finished, if its image came late', () => {
    const created = Date.parse('2026-11-30T10:00:00Z');
    assert.equal(neverReadyClockStart(base(undefined)), created);
    const shimDone = (finishedAt: string) => base({ initContainerStatuses: [{ name: 'sickbay-shim-install', image: 'x', imageID: '', ready: true, restartCount: 0, state: { terminated: { exitCode: 0, finishedAt: new Date(finishedAt) } } }] });
    assert.equal(neverReadyClockStart(shimDone('2026-11-30T10:04:00Z')), Date.parse('2026-11-30T10:04:00Z'), 'four minutes pulling the shim do not count');
    assert.equal(neverReadyClockStart(shimDone('2026-11-30T09:59:59Z')), created, 'never before the creation');
  });
});

describe('whose fault a never-Ready pod is (issue 25, item 6)', () => {
  const pod = (app: Array<{ reason?: string; restarts?: number }>, init: Array<{ reason?: string }> = []): V1Pod => ({
    metadata: { name: 'p' },
    status: {
      containerStatuses: app.map((c, i) => ({ name: `c${i}`, ready: false, restartCount: c.restarts ?? 0, image: '', imageID: '', ...(c.reason ? { state: { waiting: { reason: c.reason } } } : {}) })),
      initContainerStatuses: init.map((c, i) => ({ name: `i${i}`, ready: false, restartCount: 0, image: '', imageID: '', ...(c.reason ? { state: { waiting: { reason: c.reason } } } : {}) })),
    },
  });
  const cases: Array<[string, V1Pod, 'app' | 'node']> = [
    ['running, never Ready (a port never opened, a crash held by the supervisor)', pod([{}]), 'app'],
    ['crash-looping: it ran', pod([{ reason: 'CrashLoopBackOff', restarts: 4 }]), 'app'],
    ['restarted once, waiting again', pod([{ reason: 'ContainerCreating', restarts: 1 }]), 'app'],
    ['a missing ConfigMap or Secret', pod([{ reason: 'CreateContainerConfigError' }]), 'app'],
    ['a bad command', pod([{ reason: 'RunContainerError' }]), 'app'],
    ['never created: no sandbox, a mount that never came, no network', pod([{ reason: 'ContainerCreating' }, { reason: 'ContainerCreating' }]), 'node'],
    ['init containers never ran either', pod([{ reason: 'PodInitializing' }], [{ reason: 'PodInitializing' }]), 'node'],
    ['no container status at all, long after it was placed', pod([]), 'node'],
    ['an init container failing its own way', pod([{ reason: 'PodInitializing' }], [{ reason: 'CrashLoopBackOff' }]), 'app'],
  ];
  for (const [name, p, want] of cases) it(name, () => assert.equal(neverReadyCause(p).kind, want));
});
