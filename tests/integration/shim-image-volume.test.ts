// The shim from an image volume (issue 32, item 5), on the real node: containerd 2.4 and
// kubelet 1.36 mount the shim image read-only at /sickbay/bin, with no init container.
// What kwok cannot show: the kubelet mounting the image, the runtime letting the
// supervisor execute from it, the scene path (a deadlocked JVM quarantined, its thread
// dump taken by the dump script from the image) working without the installer; the
// kubelet's report of a shim image it cannot pull for the volume. And what
// `auto` does as nodes come and go: a node that cannot mount image volumes joins, new pods
// get the init container; it leaves, the image volume again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { IMAGES, WORKLOAD_COMMAND } from '../../dev/images.js';
import { REAL_NODE } from '../../dev/real-node.js';
import { execInPod } from '../../src/kube/exec.js';
import { ANN_DIAGNOSTICS, SHIM_IMAGE_VOLUME, SHIM_INIT_CONTAINER } from '../../src/core/names.js';
import { waitFor } from '../../src/util/wait.js';
import { createNamespace, createNodeOfVersions, eventsOf, isReady, podsOf, startCluster, type TestCluster } from '../support/cluster.js';
import { type RunningSickbay, startSickbay, waitForInjection } from '../support/sickbay.js';

const ns = 'imagevol';

describe('the shim from an image volume, on a real node', { timeout: 600_000 }, () => {
  let t: TestCluster;
  let sickbay: RunningSickbay;

  const readPod = (name: string) => t.core.readNamespacedPod({ name, namespace: ns });
  const exec = async (pod: string, command: string[]) => {
    const r = await execInPod(t.kc, { namespace: ns, pod, container: 'app' }, command, 20_000);
    if (r.error) throw new Error(`exec ${command.join(' ')} in ${pod}: ${r.error}`);
    return r.stdout;
  };
  /** What the webhook makes of a pod now, without creating it (a dry run goes through admission). */
  const admitted = async (): Promise<V1Pod> =>
    t.core.createNamespacedPod({ namespace: ns, dryRun: 'All', body: { metadata: { generateName: 'probe-' }, spec: { containers: [{ name: 'app', image: IMAGES.workload, command: ['sleep', '1'] }] } } });
  /** A Deployment of one pod labelled app=<name>, on the real node. */
  const deploy = (name: string, spec: V1PodSpec) =>
    t.apps.createNamespacedDeployment({
      namespace: ns,
      body: { metadata: { name }, spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { nodeSelector: { [REAL_NODE.label]: 'real' }, ...spec } } } },
    });
  const delivery = (p: V1Pod) => {
    const volume = p.spec?.volumes?.some((v) => v.name === SHIM_IMAGE_VOLUME && v.image?.reference === IMAGES.shim);
    const init = p.spec?.initContainers?.some((c) => c.name === SHIM_INIT_CONTAINER);
    return volume && !init ? 'image-volume' : init && !volume ? 'init-container' : `neither or both: ${JSON.stringify(p.spec)}`;
  };
  const gauge = async () => (await sickbay.handle.metrics.registry.getSingleMetricAsString('sickbay_shim_delivery')).split('\n').filter((l) => / 1$/.test(l)).join();

  before(async () => {
    // The real node alone: kwok's nodes report no kubelet or runtime that mounts image volumes.
    t = await startCluster({ nodes: 0, realNode: true });
    sickbay = await startSickbay(t, {
      SICKBAY_CONTROLLERS: 'true',
      SICKBAY_NOT_READY_GRACE: '1s',
      SICKBAY_SHIM_IMAGE: IMAGES.shim,
      SICKBAY_SHIM_SOURCE: '/opt/sickbay/shim',
      SICKBAY_DIAGNOSTICS_TIMEOUT: '30s',
    });
    await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
    await waitForInjection(t.core, ns);
  });
  after(async () => {
    await sickbay?.stop();
    await t?.stop();
  });

  it('auto mounts the shim from its image; a deadlocked JVM is quarantined, replaced and dumped by the shim from it', async () => {
    await waitFor('auto to pick the image volume', async () => delivery(await admitted()) === 'image-volume', { timeoutMs: 30_000, intervalMs: 500 });
    assert.match(await gauge(), /delivery="image-volume"/);
    await deploy('jvm', {
      containers: [
        {
          name: 'app',
          image: IMAGES.workload,
          imagePullPolicy: 'Never',
          command: WORKLOAD_COMMAND,
          ports: [{ name: 'http', containerPort: 8080 }],
          env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
          securityContext: { runAsUser: 1000, runAsGroup: 1000, allowPrivilegeEscalation: false },
          readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 1 },
          resources: { requests: { cpu: '50m', memory: '128Mi' } },
        },
      ],
    });
    const first = await waitFor('the JVM pod Ready', async () => (await podsOf(t.core, ns, 'app=jvm')).find(isReady), { timeoutMs: 180_000 });
    const name = first.metadata!.name!;
    assert.equal(delivery(first), 'image-volume');
    assert.equal(first.status?.initContainerStatuses, undefined, 'no init container ran');
    // Read-only, from the image's layers; the supervisor (uid 1000) made run/ and diag/ and recorded the limit.
    assert.match(await exec(name, ['sh', '-c', 'grep " /sickbay/bin " /proc/self/mounts']), /^\S+ \/sickbay\/bin overlay ro[,\s]/);
    const write = await execInPod(t.kc, { namespace: ns, pod: name, container: 'app' }, ['touch', '/sickbay/bin/x'], 20_000);
    assert.ok(write.exitCode !== 0 && /Read-only file system/.test(write.stderr), `the shim cannot be changed from the pod: ${JSON.stringify(write)}`);
    assert.equal((await exec(name, ['cat', '/sickbay/limit-kib'])).trim(), String(256 * 1024));
    assert.match(await exec(name, ['stat', '-c', '%a %U', '/sickbay/run', '/sickbay/diag']), /^1777 \S+\n1777 \S+\n$/);
    assert.match(await exec(name, ['cat', '/sickbay/run/app/state']), /^state=running$/m);

    await exec(name, ['wget', '-q', '-O', '-', '--post-data', '', 'http://127.0.0.1:8080/deadlock']);
    await waitFor('the deadlocked pod out of service', async () => (await readPod(name)).metadata?.labels?.app === undefined, { timeoutMs: 30_000, intervalMs: 250 });
    await waitFor('its replacement Ready', async () => (await podsOf(t.core, ns, 'app=jvm')).some((p) => p.metadata!.name !== name && isReady(p)), { timeoutMs: 120_000 });
    const diag = await waitFor(
      'diagnostics recorded',
      async () => {
        const raw = (await readPod(name)).metadata?.annotations?.[ANN_DIAGNOSTICS];
        const d = raw ? (JSON.parse(raw) as { status?: string }) : undefined;
        return d && d.status !== 'running' ? d : undefined;
      },
      { timeoutMs: 60_000 },
    );
    assert.equal(diag.status, 'ok', JSON.stringify(diag));
    assert.match(await exec(name, ['sh', '-c', 'cat /sickbay/diag/*/threads.txt']), /Found one Java-level deadlock/, 'the dump script from the image ran jcmd');
  });

  it("a shim image the kubelet cannot pull for the volume: sickbay's image is named (ShimImageUnavailable), the app's image and the node are not blamed", async () => {
    // The shim's volume of an image no registry serves (as a private registry without its
    // pull secret): the webhook keeps a volume that is already there and mounts it.
    const missing = 'registry.sickbay.invalid/sickbay-shim:0.1.0';
    await deploy('nopull', {
      terminationGracePeriodSeconds: 1,
      volumes: [{ name: SHIM_IMAGE_VOLUME, image: { reference: missing, pullPolicy: 'IfNotPresent' } }],
      containers: [{ name: 'app', image: IMAGES.workload, imagePullPolicy: 'Never', command: ['sleep', '3600'] }],
    });
    const pod = await waitFor('the kubelet failing to pull the volume\'s image', async () => {
      const p = (await podsOf(t.core, ns, 'app=nopull'))[0];
      const w = p?.status?.containerStatuses?.[0]?.state?.waiting;
      return p && (w?.reason === 'ErrImagePull' || w?.reason === 'ImagePullBackOff') ? p : undefined;
    }, { timeoutMs: 120_000 });
    assert.equal(pod.status!.containerStatuses![0]!.image, IMAGES.workload, "the kubelet reports it on the app container, whose own image is there");
    const event = await waitFor('ShimImageUnavailable on the Deployment', async () => (await eventsOf(t, ns, { kind: 'Deployment', name: 'nopull', reason: 'ShimImageUnavailable' }))[0], { timeoutMs: 60_000 });
    assert.match(event.message!, /cannot pull sickbay's shim image registry\.sickbay\.invalid\/sickbay-shim:0\.1\.0 \((ErrImagePull|ImagePullBackOff)\)/);
    assert.equal((await eventsOf(t, ns, { name: pod.metadata!.name, reason: 'ImagePullNotNode' })).length, 0, 'not reported as the app image');
    await t.apps.deleteNamespacedDeployment({ name: 'nopull', namespace: ns });
  });

  it('a node that cannot mount image volumes joins: new pods get the init container; it leaves: the image volume again', async () => {
    // A Node object as an older kubelet on containerd 1.7 registers it (nothing runs there).
    const old = 'old-runtime';
    await createNodeOfVersions(t.core, old, { kubeletVersion: 'v1.34.2', containerRuntimeVersion: 'containerd://1.7.27' });
    try {
      await waitFor('new pods to get the init container', async () => delivery(await admitted()) === 'init-container', { timeoutMs: 30_000, intervalMs: 500 });
      assert.match(await gauge(), /delivery="init-container"/);
    } finally {
      await t.core.deleteNode({ name: old });
    }
    await waitFor('the image volume again once it left', async () => delivery(await admitted()) === 'image-volume', { timeoutMs: 30_000, intervalMs: 500 });
  });
});
