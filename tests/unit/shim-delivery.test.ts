// How injected pods get the shim: which nodes `auto` trusts with an image volume, what the
// webhook makes of a pod with each delivery, and the tracker that follows the nodes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { ANN_INJECTED, SHIM_BIN_MOUNT, SHIM_IMAGE_VOLUME, SHIM_INIT_CONTAINER, SHIM_MOUNT, SHIM_SUPERVISOR, SHIM_VOLUME } from '../../src/core/names.js';
import { createLogger } from '../../src/core/log.js';
import { chooseDelivery, imageVolumeBlocker, ShimDeliveryTracker } from '../../src/webhook/shim-delivery.js';
import { reviewMutation, type ReviewDeps } from '../../src/webhook/review.js';
import { patched, podCreateRequest } from '../support/admission.js';
import { readGoldenInput } from '../support/golden.js';

// As the golden files' (tests/unit/mutate-golden.test.ts), which stay on the init container.
const goldenDeps: ReviewDeps = { injection: { shimImage: 'registry.example/sickbay:test', shimSource: '/opt/sickbay/shim' }, sickbayUsername: 'system:serviceaccount:sickbay-system:sickbay' };

const node = (name: string, kubeletVersion: string, containerRuntimeVersion: string): V1Node => ({ metadata: { name }, status: { nodeInfo: { kubeletVersion, containerRuntimeVersion } as never } });

describe('which nodes can run the shim from an image volume', () => {
  const cases: Array<[string, string, string, boolean]> = [
    ['containerd 2.4 on kubelet 1.36', 'v1.36.3', 'containerd://2.4.2', true],
    ['containerd 2.1, the first to mount image volumes, on 1.35 (on by default)', 'v1.35.0', 'containerd://2.1.0', true],
    ['k3s', 'v1.35.4+k3s1', 'containerd://2.1.5-k3s1', true],
    ['a managed cluster build', 'v1.36.1-eks-4a2b1c0', 'containerd://2.2.0', true],
    ['containerd 2.0, which has no image volumes', 'v1.36.3', 'containerd://2.0.5', false],
    ['containerd 1.7', 'v1.35.0', 'containerd://1.7.27', false],
    ['kubelet 1.34, where the feature is off by default', 'v1.34.2', 'containerd://2.2.0', false],
    ['CRI-O, which mounts image volumes noexec', 'v1.36.0', 'cri-o://1.36.1', false],
    ['a kwok node', 'kwok-v0.8.0', 'kwok-v0.8.0', false],
    ['a node that has not reported yet', '', '', false],
  ];
  for (const [what, kubelet, runtime, ok] of cases) {
    it(`${what}: ${ok ? 'yes' : 'no'}`, () => {
      const blocker = imageVolumeBlocker(node('n1', kubelet, runtime));
      if (ok) assert.equal(blocker, undefined);
      else assert.match(blocker ?? '', /^node n1 runs /, 'the reason names the node');
    });
  }

  it('auto takes the image volume only when every node can, and says which node stops it', () => {
    const good = [node('a', 'v1.36.3', 'containerd://2.4.2'), node('b', 'v1.35.0', 'containerd://2.1.0')];
    assert.deepEqual(chooseDelivery('auto', good), { delivery: 'image-volume', why: 'auto: all 2 nodes run kubelet 1.35+ and containerd 2.1+' });
    const mixed = chooseDelivery('auto', [...good, node('old', 'v1.33.1', 'containerd://1.7.2'), node('crio', 'v1.36.0', 'cri-o://1.36.1')]);
    assert.equal(mixed.delivery, 'init-container');
    assert.match(mixed.why, /node old runs kubelet v1\.33\.1.*\(and 1 other node\)$/);
    assert.equal(chooseDelivery('auto', []).delivery, 'init-container', 'no node known: the init container, which works everywhere');
    assert.equal(chooseDelivery('auto', undefined).delivery, 'init-container', 'no node watch (controllers off)');
    assert.equal(chooseDelivery('image-volume', []).delivery, 'image-volume', 'an explicit setting is obeyed');
    assert.equal(chooseDelivery('init-container', good).delivery, 'init-container');
  });
});

describe('a pod injected with the shim from an image volume', () => {
  const deps = { ...goldenDeps, injection: { ...goldenDeps.injection, delivery: 'image-volume' as const } };
  const mutate = (pod: V1Pod) => patched(pod, reviewMutation(podCreateRequest(pod), deps));

  it('gets no init container: the image mounted read-only at /sickbay/bin in every container, over the pod volume, and the limit passed to the supervisor', () => {
    const input = readGoldenInput('mutate', 'several-containers');
    const out = mutate(input);
    assert.deepEqual(out.spec!.initContainers ?? [], input.spec!.initContainers ?? [], 'no init container added');
    assert.deepEqual(out.spec!.volumes!.find((v) => v.name === SHIM_IMAGE_VOLUME), { name: SHIM_IMAGE_VOLUME, image: { reference: 'registry.example/sickbay:test', pullPolicy: 'IfNotPresent' } });
    assert.ok(out.spec!.volumes!.some((v) => v.name === SHIM_VOLUME && v.emptyDir), 'the pod volume stays: run/, diag/ and dumps are written there');
    for (const c of out.spec!.containers) {
      assert.deepEqual(c.volumeMounts!.find((m) => m.mountPath === SHIM_BIN_MOUNT), { name: SHIM_IMAGE_VOLUME, mountPath: SHIM_BIN_MOUNT, readOnly: true, subPath: 'opt/sickbay/shim' }, c.name);
      assert.ok(c.volumeMounts!.some((m) => m.mountPath === SHIM_MOUNT && m.name === SHIM_VOLUME), c.name);
      if (c.command?.[0] === SHIM_SUPERVISOR) assert.deepEqual(c.command.slice(0, 5), [SHIM_SUPERVISOR, '--name', c.name, '--limit-kib', String(256 * 1024)]);
    }
    const unmarked = structuredClone(out);
    delete unmarked.metadata!.annotations![ANN_INJECTED];
    assert.deepEqual(mutate(unmarked), out, 'a fixed point: it recognises its own work');
  });

  it('the init container delivery is what it was: the installer first, no image volume, no limit argument', () => {
    const out = patched(readGoldenInput('mutate', 'several-containers'), reviewMutation(podCreateRequest(readGoldenInput('mutate', 'several-containers')), goldenDeps));
    assert.equal(out.spec!.initContainers![0]!.name, SHIM_INIT_CONTAINER);
    assert.ok(!out.spec!.volumes!.some((v) => v.name === SHIM_IMAGE_VOLUME));
    assert.ok(!out.spec!.containers.some((c) => c.command?.includes('--limit-kib')));
  });
});

describe('the tracker', () => {
  type H = { add?: (n: V1Node) => void; update?: (n: V1Node, old: V1Node) => void; delete?: (n: V1Node) => void };
  const source = () => {
    const nodes = new Map<string, V1Node>();
    const handlers: H[] = [];
    return {
      list: () => nodes.values(),
      on: (h: H) => void handlers.push(h),
      add(n: V1Node) {
        nodes.set(n.metadata!.name!, n);
        for (const h of handlers) h.add?.(n);
      },
      update(n: V1Node) {
        const old = nodes.get(n.metadata!.name!)!;
        nodes.set(n.metadata!.name!, n);
        for (const h of handlers) h.update?.(n, old);
      },
      remove(name: string) {
        const n = nodes.get(name)!;
        nodes.delete(name);
        for (const h of handlers) h.delete?.(n);
      },
    };
  };
  const tick = () => new Promise((r) => setImmediate(r));

  it('follows nodes joining, upgrading and leaving, once per burst, and reports each change', async () => {
    const nodes = source();
    const reported: string[] = [];
    let lists = 0;
    const counted = { list: () => (lists++, nodes.list()), on: nodes.on };
    const tracker = new ShimDeliveryTracker('auto', counted, { log: createLogger('error'), report: (d) => reported.push(d) });
    assert.equal(tracker.current.delivery, 'init-container', 'before the informer lists: the init container');
    for (let i = 0; i < 500; i++) nodes.add(node(`n${i}`, 'v1.36.3', 'containerd://2.4.2'));
    await tick();
    assert.equal(tracker.current.delivery, 'image-volume');
    assert.equal(lists, 1, 'the initial list of 500 nodes is judged once, not 500 times');
    nodes.add(node('old', 'v1.34.0', 'containerd://1.7.27'));
    await tick();
    assert.equal(tracker.current.delivery, 'init-container');
    nodes.update({ ...node('old', 'v1.34.0', 'containerd://1.7.27'), spec: { unschedulable: true } });
    await tick();
    assert.equal(lists, 2, 'an update that changes neither kubelet nor runtime is not judged');
    nodes.update(node('old', 'v1.35.1', 'containerd://2.1.3'));
    await tick();
    assert.equal(tracker.current.delivery, 'image-volume', 'upgraded in place');
    nodes.add(node('crio', 'v1.36.0', 'cri-o://1.36.1'));
    await tick();
    nodes.remove('crio');
    await tick();
    assert.deepEqual(reported, ['init-container', 'image-volume', 'init-container', 'image-volume', 'init-container', 'image-volume']);
  });
});
