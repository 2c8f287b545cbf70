// What the pod cache keeps: every decision made on a cached pod comes out the same as on
// the full pod, and the heavy parts of an injected pod are gone.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { V1Deployment, V1Node, V1Pod, V1ReplicaSet } from '@kubernetes/client-node';
import { deploymentForCache, namespaceForCache, nodeForCache, podForCache, replicaSetForCache, serviceForCache } from '../../src/kube/cluster-cache.js';
import { imagePullFailure, neverReadyClockStart } from '../../src/never-ready/never-ready-controller.js';
import { quarantineTrigger } from '../../src/quarantine/quarantine-policy.js';
import { escapedInjection } from '../../src/webhook/uninjected-pods.js';
import { isPodReady, isQuarantined, wasEverReady } from '../../src/kube/pods.js';

// The webhook's output for a two-container pod, as the API server stores it once it runs.
function injectedRunningPod(ready: boolean): V1Pod {
  const { pod } = JSON.parse(readFileSync(new URL('../golden/mutate/several-containers.golden.json', import.meta.url), 'utf8')) as { pod: V1Pod };
  const t = '2026-11-22T07:00:00Z';
  pod.metadata = {
    ...pod.metadata,
    name: 'web-abc12',
    uid: 'u-1',
    resourceVersion: '42',
    creationTimestamp: new Date(t),
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d8f', uid: 'rs-1', controller: true }],
    managedFields: [{ manager: 'kube-controller-manager', operation: 'Update', fieldsV1: { 'f:metadata': {} } }],
  };
  pod.spec = { ...pod.spec!, nodeName: 'node-7', tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }] };
  pod.status = {
    phase: 'Running',
    podIP: '10.244.0.9',
    podIPs: [{ ip: '10.244.0.9' }],
    hostIP: '192.168.0.7',
    startTime: new Date(t),
    conditions: [
      { type: 'Initialized', status: 'True', lastTransitionTime: new Date(t) },
      { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: new Date(t), reason: ready ? undefined : 'ContainersNotReady', message: 'containers with unready status: [web]' },
    ],
    containerStatuses: pod.spec.containers.map((c) => ({
      name: c.name,
      ready,
      restartCount: 2,
      started: true,
      image: c.image!,
      imageID: `docker.io/${c.image}@sha256:${'0'.repeat(64)}`,
      containerID: `containerd://${'f'.repeat(64)}`,
      state: { running: { startedAt: new Date(t) } },
    })),
  };
  return pod;
}

describe('podForCache', () => {
  it('makes the same decisions as the full pod', () => {
    const now = Date.parse('2026-11-22T07:05:00Z');
    for (const ready of [true, false]) {
      for (const annotate of [false, true]) {
        const full = injectedRunningPod(ready);
        if (annotate) full.metadata!.annotations = { ...full.metadata!.annotations, 'sickbay.io/isolate': 'oom' };
        const slim = podForCache(structuredClone(full));
        assert.equal(isPodReady(slim), isPodReady(full));
        assert.equal(isQuarantined(slim), isQuarantined(full));
        assert.equal(wasEverReady(slim, false), wasEverReady(full, false));
        assert.equal(escapedInjection(slim, 'sickbay-system'), escapedInjection(full, 'sickbay-system'));
        const ctx = { seenReady: true, firstSeenNotReady: now - 20_000, requestSeenAt: annotate ? now - 1000 : undefined };
        assert.deepEqual(quarantineTrigger(slim, now, 10_000, ctx), quarantineTrigger(full, now, 10_000, ctx));
      }
    }
  });

  it('keeps what the pipeline and the controllers read', () => {
    const full = injectedRunningPod(true);
    full.metadata!.annotations = { ...full.metadata!.annotations, 'sidecar.istio.io/status': '{"initContainers":["istio-init"]}', 'sickbay.io/owner': 'Deployment/web' };
    full.metadata!.ownerReferences = [{ apiVersion: 'v1', kind: 'Other', name: 'x', uid: 'x-1' }, ...full.metadata!.ownerReferences!];
    const slim = podForCache(structuredClone(full));
    const { name, namespace, uid, resourceVersion, creationTimestamp, labels } = full.metadata!;
    for (const [k, v] of Object.entries({ name, namespace, uid, resourceVersion, creationTimestamp, labels })) assert.deepEqual(slim.metadata![k as 'name'], v, k);
    // sickbay's own annotations; others (a mesh's status, kubectl's last applied) stay out.
    assert.deepEqual(Object.keys(slim.metadata!.annotations!).sort(), Object.keys(full.metadata!.annotations!).filter((k) => k.startsWith('sickbay.io/')).sort());
    assert.deepEqual(slim.metadata!.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d8f', uid: 'rs-1', controller: true }], 'the controller only');
    assert.deepEqual(slim.status!.conditions!.map((c) => c.type).sort(), ['Initialized', 'Ready']);
    assert.equal(slim.spec?.nodeName, 'node-7');
    assert.deepEqual(slim.spec?.containers.map((c) => c.name), full.spec!.containers.map((c) => c.name)); // the diagnostics container
    assert.equal(slim.status?.podIP, '10.244.0.9'); // registry deregistration
    assert.deepEqual(slim.status?.containerStatuses?.map((c) => c.restartCount), [2, 2]);
  });

  it('drops commands, env, probes, volumes and image details: most of an injected pod', () => {
    const full = injectedRunningPod(true);
    const slim = podForCache(structuredClone(full));
    const text = JSON.stringify(slim);
    for (const gone of ['--name', 'volumeMounts', 'readinessProbe', 'sha256', 'containerd://', 'tolerations', 'managedFields', 'hostIP', 'podIPs']) assert.ok(!text.includes(gone), `${gone} is still cached`);
    // Of a command, only whether the supervisor starts it (for sickbay_unsupervised_containers): one shared array.
    assert.deepEqual(slim.spec!.containers.map((c) => c.command), full.spec!.containers.map((c) => (c.command?.[0] === '/sickbay/bin/supervise' ? ['/sickbay/bin/supervise'] : undefined)));
    const i = slim.spec!.containers.findIndex((c) => c.command);
    assert.ok(i >= 0, 'a supervised container');
    assert.equal(podForCache(structuredClone(full)).spec!.containers[i]!.command, slim.spec!.containers[i]!.command, 'the same array for every pod');
    assert.ok(text.length < JSON.stringify(full).length / 2, `cached ${text.length} bytes of ${JSON.stringify(full).length}`);
  });

  it('is a type of its own: code that needs what it drops does not compile against it (issue 25, item 4)', () => {
    const slim = podForCache(injectedRunningPod(true));
    // The checks are the @ts-expect-error lines: `npm run typecheck` fails if either compiles.
    // @ts-expect-error the cache keeps no probes
    assert.equal(slim.spec?.containers[0]?.livenessProbe, undefined);
    const needsTheWholePod = (p: V1Pod) => p.spec?.containers[0]?.livenessProbe;
    // @ts-expect-error a cached pod cannot be handed to code that takes the whole pod
    assert.equal(needsTheWholePod(slim), undefined);
    // It keeps what the registry step and the isolation toleration read.
    const host = podForCache({ ...injectedRunningPod(true), spec: { ...injectedRunningPod(true).spec!, hostNetwork: true, containers: [{ name: 'gw', ports: [{ containerPort: 20880, hostPort: 20881, protocol: 'TCP', name: 'dubbo' }] }], tolerations: [{ key: 'sickbay.io/isolated', operator: 'Exists', effect: 'NoExecute' }, { key: 'other', operator: 'Exists' }] } });
    assert.equal(host.spec?.hostNetwork, true);
    assert.deepEqual(host.spec?.containers[0]?.ports, [{ containerPort: 20880, hostPort: 20881 }]);
    assert.deepEqual(host.spec?.tolerations, [{ key: 'sickbay.io/isolated', operator: 'Exists', effect: 'NoExecute' }]);
    assert.equal(slim.spec?.hostNetwork, undefined, 'nothing of the kind kept for other pods');
    assert.equal(slim.spec?.containers[0]?.ports, undefined);
  });

  it('keeps a Node whole but for the images it holds', () => {
    const node: V1Node = {
      metadata: { name: 'n1', labels: { pool: 'a' } },
      spec: { taints: [{ key: 'k', effect: 'NoExecute' }] },
      status: { conditions: [{ type: 'Ready', status: 'True' }], images: [{ names: ['registry.example/big:1'], sizeBytes: 1 }] },
    };
    const slim = nodeForCache(structuredClone(node));
    assert.equal(slim.status!.images, undefined);
    assert.deepEqual({ ...slim, status: { ...slim.status, images: node.status!.images } }, node);
  });

  it('keeps what the never-Ready rule reads: an image pull failure (with its image) and when the shim installer finished', () => {
    const pod: V1Pod = {
      metadata: { name: 'p', namespace: 'n' },
      spec: { containers: [{ name: 'app', image: 'a' }] },
      status: {
        initContainerStatuses: [{ name: 'sickbay-shim-install', image: 'private.example/sickbay-shim:1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'a long registry error' } } }],
        containerStatuses: [{ name: 'app', image: 'a', imageID: 'sha256:abc', ready: false, restartCount: 0, state: { waiting: { reason: 'PodInitializing' } } }],
      },
    };
    const slim = podForCache(structuredClone(pod));
    assert.deepEqual(imagePullFailure(slim), { container: 'sickbay-shim-install', reason: 'ImagePullBackOff', image: 'private.example/sickbay-shim:1', shim: true });
    assert.equal(slim.status!.containerStatuses![0]!.image, '', 'images only where they cannot be pulled');
    // The kubelet's message while a pull fails (it names the image), at most 512 bytes of it; no other container's.
    assert.equal(slim.status!.initContainerStatuses![0]!.state?.waiting?.message, 'a long registry error');
    const chatty = structuredClone(pod);
    chatty.status!.initContainerStatuses![0]!.state!.waiting!.message = 'x'.repeat(100_000);
    chatty.status!.containerStatuses![0]!.state!.waiting!.message = 'waiting for the init containers';
    const slimChatty = podForCache(chatty);
    assert.equal(slimChatty.status!.initContainerStatuses![0]!.state?.waiting?.message?.length, 512);
    assert.equal(slimChatty.status!.containerStatuses![0]!.state?.waiting?.message, undefined);
    const finished = new Date('2026-11-30T10:04:00Z');
    pod.status!.initContainerStatuses![0]!.state = { terminated: { exitCode: 0, finishedAt: finished } };
    assert.equal(neverReadyClockStart(podForCache(structuredClone(pod))), finished.getTime());
  });
});

describe('the caches of workloads, Services and Namespaces (issue 31)', () => {
  // A template of a megabyte: a hostile `replicas: 0` Deployment, or an honest one with a
  // large ConfigMap inlined in its env. Every replica caches every ReplicaSet and Deployment.
  const template = {
    metadata: { labels: { app: 'big' }, annotations: { huge: 'x'.repeat(500_000) } },
    spec: {
      containers: [{ name: 'app', image: 'example.com/app:1', env: [{ name: 'BLOB', value: 'y'.repeat(500_000) }] }],
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } }, podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
      tolerations: [{ key: 'dedicated', operator: 'Exists' }],
    },
  };
  const bytes = (o: unknown) => JSON.stringify(o).length;

  it('a ReplicaSet keeps its owner, selector, replicas and why it cannot create pods; not its megabyte template', () => {
    const rs: V1ReplicaSet = {
      metadata: { name: 'big-abc', namespace: 'shop', uid: 'u', resourceVersion: '7', labels: { app: 'big', 'pod-template-hash': 'abc' }, annotations: { 'deployment.kubernetes.io/revision': '3' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'big', uid: 'd', controller: true }] },
      spec: { replicas: 3, selector: { matchLabels: { app: 'big', 'pod-template-hash': 'abc' } }, template },
      status: { replicas: 2, readyReplicas: 2, conditions: [{ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: `pods "big-abc-x" is forbidden: exceeded quota ${'q'.repeat(5000)}` }] },
    };
    const slim = replicaSetForCache(rs);
    assert.ok(bytes(rs) > 1_000_000 && bytes(slim) < 2_000, `${bytes(slim)} bytes kept of ${bytes(rs)}`);
    assert.deepEqual(slim.spec, { replicas: 3, selector: rs.spec!.selector });
    assert.equal(slim.metadata!.ownerReferences![0]!.name, 'big');
    assert.equal(slim.status!.conditions![0]!.reason, 'FailedCreate');
    assert.equal(slim.status!.conditions![0]!.message!.length, 1024);
  });

  it('a Deployment keeps its annotations of sickbay, selector, replicas and where its pods may run; not the rest of its template', () => {
    const d: V1Deployment = {
      metadata: { name: 'big', namespace: 'shop', uid: 'd', resourceVersion: '9', annotations: { 'sickbay.io/avoid-nodes': '{"n1":"2026-12-07T00:00:00Z"}', 'sickbay.io/max-quarantined': '2', 'kubectl.kubernetes.io/last-applied-configuration': 'z'.repeat(300_000) } },
      spec: { replicas: 0, selector: { matchLabels: { app: 'big' } }, template },
    };
    const slim = deploymentForCache(d);
    assert.ok(bytes(d) > 1_000_000 && bytes(slim) < 1_000, `${bytes(slim)} bytes kept of ${bytes(d)}`);
    assert.deepEqual(slim.metadata!.annotations, { 'sickbay.io/avoid-nodes': '{"n1":"2026-12-07T00:00:00Z"}', 'sickbay.io/max-quarantined': '2' });
    assert.deepEqual(slim.spec!.template.spec!.nodeSelector, template.spec.nodeSelector);
    assert.deepEqual(slim.spec!.template.spec!.affinity, { nodeAffinity: template.spec.affinity.nodeAffinity });
    assert.deepEqual(slim.spec!.template.spec!.tolerations, template.spec.tolerations);
    assert.equal(slim.spec!.replicas, 0);
  });

  it('a Service keeps its selector; a Namespace its labels and sickbay annotations', () => {
    const svc = serviceForCache({ metadata: { name: 's', namespace: 'shop', annotations: { big: 'x'.repeat(100_000) } }, spec: { selector: { app: 'big' }, ports: [{ port: 80 }] } });
    assert.deepEqual(svc.spec, { selector: { app: 'big' } });
    assert.equal(svc.metadata!.annotations, undefined);
    const ns = namespaceForCache({ metadata: { name: 'shop', labels: { 'sickbay.io/injection': 'enabled' }, annotations: { 'sickbay.io/flight-recorder': 'true', other: 'x'.repeat(100_000) } } });
    assert.deepEqual(ns.metadata!.annotations, { 'sickbay.io/flight-recorder': 'true' });
    assert.equal(ns.metadata!.labels!['sickbay.io/injection'], 'enabled');
  });
});
