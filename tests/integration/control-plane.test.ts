// Issue 2: the mechanisms sickbay builds on, proven on a real control plane.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { Informer } from '../../src/kube/informer.js';
import { createLogger } from '../../src/core/log.js';
import { execInPod } from '../../src/kube/exec.js';
import { SIMULATE_READY_ANNOTATION } from '../../dev/kwok-config.js';
import { waitFor } from '../../src/util/wait.js';
import { breakPod, createNamespace, createWebApp, isReady, podsOf, readyEndpoints, startCluster, type TestCluster } from '../support/cluster.js';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

describe('local control plane', { timeout: 300_000 }, () => {
  let t: TestCluster;
  const ns = 'shop';

  before(async () => {
    t = await startCluster({ nodes: 3, simulation: { exec: { workDir: '/tmp', env: { SICKBAY_TEST_MARKER: 'from-kwok-exec' } } } });
    await createNamespace(t.core, ns);
    await createWebApp(t, ns, 'web', 3);
  });

  after(async () => {
    await t?.stop();
  });

  it('schedules a Deployment of 3 onto kwok nodes, all Ready, with 3 ready endpoints', async () => {
    const pods = await waitFor('3 ready pods', async () => {
      const ps = await podsOf(t.core, ns, 'app=web');
      return ps.length === 3 && ps.every(isReady) ? ps : undefined;
    });
    for (const p of pods) assert.match(p.spec!.nodeName!, /^kwok-node-\d$/, 'placed by the real scheduler on a kwok node');
    const ips = pods.map((p) => p.status!.podIP!).sort();
    assert.equal(new Set(ips).size, 3, 'each pod has its own IP');
    await waitFor('3 ready endpoints', async () => (await readyEndpoints(t.discovery, ns, 'web')).join() === ips.join());
  });

  it('a pod annotated not-ready turns NotReady and leaves the ready endpoints', async () => {
    const [pod] = await podsOf(t.core, ns, 'app=web');
    const name = pod!.metadata!.name!;
    await breakPod(t, ns, name);
    await waitFor('the pod NotReady', async () => !isReady(await t.core.readNamespacedPod({ name, namespace: ns })));
    await waitFor('its endpoint not ready', async () => !(await readyEndpoints(t.discovery, ns, 'web')).includes(pod!.status!.podIP!));
    await t.core.patchNamespacedPod({ name, namespace: ns, body: { metadata: { annotations: { [SIMULATE_READY_ANNOTATION]: null } } } }, mergePatch);
    await waitFor('the pod Ready again', async () => isReady(await t.core.readNamespacedPod({ name, namespace: ns })));
  });

  it('removing a selector label releases the pod: a replacement comes, the endpoint goes, the old pod stays', async () => {
    const [victim] = await podsOf(t.core, ns, 'app=web');
    const name = victim!.metadata!.name!;
    const ip = victim!.status!.podIP!;
    assert.equal(victim!.metadata!.ownerReferences?.[0]?.kind, 'ReplicaSet');
    await t.core.patchNamespacedPod({ name, namespace: ns, body: { metadata: { labels: { app: null } } } }, mergePatch);

    const released = await waitFor('the ReplicaSet to release the pod', async () => {
      const p = await t.core.readNamespacedPod({ name, namespace: ns });
      return (p.metadata!.ownerReferences ?? []).length === 0 ? p : undefined;
    });
    assert.equal(released.status!.phase, 'Running', 'the released pod keeps running');
    await waitFor('a replacement and 3 ready pods again', async () => {
      const ps = await podsOf(t.core, ns, 'app=web');
      return ps.length === 3 && ps.every(isReady) && !ps.some((p) => p.metadata!.name === name);
    });
    await waitFor('the old address gone from the EndpointSlice', async () => {
      const eps = await readyEndpoints(t.discovery, ns, 'web');
      return eps.length === 3 && !eps.includes(ip);
    });
    const still = await t.core.readNamespacedPod({ name, namespace: ns });
    assert.ok(!still.metadata!.deletionTimestamp, 'the released pod is not being deleted');
  });

  it('a NoExecute taint makes kube-controller-manager evict pods that do not tolerate it', async () => {
    const pods = await podsOf(t.core, ns, 'app=web');
    const node = pods[0]!.spec!.nodeName!;
    const onNode = pods.filter((p) => p.spec!.nodeName === node).map((p) => p.metadata!.name!);
    const n = await t.core.readNode({ name: node });
    await t.core.patchNode(
      { name: node, body: { spec: { taints: [...(n.spec?.taints ?? []), { key: 'example.com/broken', value: 'yes', effect: 'NoExecute' }] } } },
      mergePatch,
    );
    await waitFor(`pods evicted from ${node}`, async () => {
      const names = (await podsOf(t.core, ns, 'app=web')).map((p) => p.metadata!.name!);
      return onNode.every((p) => !names.includes(p));
    });
    const after = await waitFor('3 ready replacements elsewhere', async () => {
      const ps = await podsOf(t.core, ns, 'app=web');
      return ps.length === 3 && ps.every(isReady) ? ps : undefined;
    });
    assert.ok(after.every((p) => p.spec!.nodeName !== node), 'no replacement lands on the tainted node');
    await t.core.patchNode({ name: node, body: { spec: { taints: n.spec?.taints ?? null } } }, mergePatch);
  });

  it('exec into a kwok pod through the API server runs a local command, with its exit code and a timeout', async () => {
    const [pod] = await podsOf(t.core, ns, 'app=web');
    const target = { namespace: ns, pod: pod!.metadata!.name!, container: 'web' };
    const ok = await execInPod(t.kc, target, ['sh', '-c', 'echo "$SICKBAY_TEST_MARKER in $(pwd)"; echo oops >&2'], 10_000);
    assert.equal(ok.exitCode, 0);
    assert.equal(ok.stdout.trim(), 'from-kwok-exec in /tmp');
    assert.equal(ok.stderr.trim(), 'oops');
    const failed = await execInPod(t.kc, target, ['sh', '-c', 'exit 7'], 10_000);
    assert.equal(failed.exitCode, 7);
    const hung = await execInPod(t.kc, target, ['sleep', '30'], 500);
    assert.equal(hung.timedOut, true);
    assert.equal(hung.exitCode, undefined);
    const missing = await execInPod(t.kc, { ...target, pod: 'no-such-pod' }, ['true'], 5_000);
    assert.equal(missing.exitCode, undefined);
    assert.match(missing.error ?? '', /not found|404/i);
  });

  it('simulate() changes pod behaviour on a running cluster: pods on a broken node are never started (ContainerCreating)', async () => {
    await t.cp.simulate({ neverReadyNodes: ['kwok-node-1'] });
    const make = (name: string, nodeName: string) =>
      t.core.createNamespacedPod({ namespace: ns, body: { metadata: { name }, spec: { nodeName, containers: [{ name: 'c', image: 'x', command: ['/run'] }] } } });
    await make('on-broken-node', 'kwok-node-1');
    await make('on-good-node', 'kwok-node-2');
    await waitFor('the pod on the good node Ready', async () => isReady(await t.core.readNamespacedPod({ name: 'on-good-node', namespace: ns })));
    const broken = await waitFor('the pod on the broken node waiting to be created', async () => {
      const p = await t.core.readNamespacedPod({ name: 'on-broken-node', namespace: ns });
      return p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ContainerCreating' ? p : undefined;
    });
    assert.equal(isReady(broken), false);
    assert.equal(broken.status?.phase, 'Pending');
    await t.cp.simulate({ neverReadyNodes: [] });
  });

  it('an identity without rights gets 403 from the real authorizer', async () => {
    const stranger = t.cp.clientCertKubeConfig('mallory', ['example:nobody']);
    const { CoreV1Api } = await import('@kubernetes/client-node');
    await assert.rejects(stranger.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: ns }), (err: { code?: number }) => err.code === 403);
    const sa = await t.cp.serviceAccountKubeConfig(ns, 'nobody');
    await assert.rejects(sa.makeApiClient(CoreV1Api).deleteNamespacedPod({ namespace: ns, name: 'x' }), (err: { code?: number }) => err.code === 403);
  });

  it('an informer whose list the API server does not answer gives up on the page and lists again once it answers', async () => {
    const lines: string[] = [];
    const log = createLogger('warn', new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
    const pods = new Informer<V1Pod>(t.kc, { resource: 'pods', path: `/api/v1/namespaces/${ns}/pods`, resyncMs: 0, listPageTimeoutMs: 1_000, log });
    const abort = new AbortController();
    const pid = t.cp.pidOf('kube-apiserver')!;
    process.kill(pid, 'SIGSTOP');
    const running = pods.run(abort.signal);
    try {
      await waitFor('the list given up', () => lines.some((l) => /no answer within 1000 ms/.test(l)), { timeoutMs: 10_000 });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await pods.waitForSync(AbortSignal.timeout(30_000));
    assert.ok(pods.hasSynced(), 'synced once the API server answers');
    assert.equal(pods.size, (await podsOf(t.core, ns, '')).length);
    abort.abort();
    await running;
  });
});
