// What the pod cache holds per pod, in one process: BENCH_PODS (10000) injected,
// running pods as kwok and the API server write them (managedFields, status of every
// container, five conditions, IP lists), each parsed from JSON as the informer does, kept
// (a) as the API server sends them less managedFields and (b) as podForCache keeps them;
// V8 heap used after a full GC, per pod. Alternated BENCH_ROUNDS (3) times.
//   node --expose-gc --import tsx bench/pod-cache.ts   (npm run bench:pod-cache)
import type { V1Pod } from '@kubernetes/client-node';
import { podForCache } from '../src/kube/cluster-cache.js';
import { median } from './support.js';

const N = Number(process.env.BENCH_PODS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (npm run bench:pod-cache)');

const at = (i: number, s: number) => new Date(Date.UTC(2026, 10, 30, 8, 0, s) + i * 1000).toISOString().replace('.000', '');
/** The i-th pod as the API server returns it: unique names, IPs and times. */
function podJson(i: number): string {
  const app = `app-${i % 20}`;
  const ip = `10.244.${(i >> 8) & 255}.${i & 255}`;
  const node = `kwok-node-${i % 50}`;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${app}-7d9f8c6b5-${(i * 7919).toString(36).padStart(5, 'x')}`,
      generateName: `${app}-7d9f8c6b5-`,
      namespace: 'bench',
      uid: `6f1c2e4a-${String(i).padStart(4, '0')}-4b3c-9d2e-0a1b2c3d4e5f`,
      resourceVersion: String(100000 + i),
      creationTimestamp: at(i, 0),
      labels: { app, tier: 'web', 'pod-template-hash': '7d9f8c6b5' },
      annotations: { 'sickbay.io/injected': 'true', 'kubectl.kubernetes.io/default-container': 'web' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${app}-7d9f8c6b5`, uid: '0a1b2c3d-1111-2222-3333-444455556666', controller: true, blockOwnerDeletion: true }],
      managedFields: [
        { manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'v1', time: at(i, 0), fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } } } },
        { manager: 'kwok', operation: 'Update', apiVersion: 'v1', time: at(i, 3), fieldsType: 'FieldsV1', subresource: 'status', fieldsV1: { 'f:status': { 'f:conditions': {} } } },
      ],
    },
    spec: {
      volumes: [{ name: 'sickbay-shim', emptyDir: {} }],
      initContainers: [{ name: 'sickbay-shim-install', image: 'sickbay.local/sickbay-shim:dev', command: ['/opt/sickbay/shim/busybox', 'sh', '/opt/sickbay/shim/install'] }],
      containers: [{ name: 'web', image: 'example.com/web:1', command: ['/sickbay/bin/supervise'], args: ['/app/server', '--port=8080'], env: [{ name: 'SICKBAY_CONTAINER', value: 'web' }], readinessProbe: { exec: { command: ['/sickbay/bin/probe'] } } }],
      nodeName: node,
      restartPolicy: 'Always',
      schedulerName: 'default-scheduler',
      tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
    },
    status: {
      phase: 'Running',
      conditions: ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type, k) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: at(i, 1 + (k % 3)) })),
      hostIP: `10.0.${i % 50}.1`,
      hostIPs: [{ ip: `10.0.${i % 50}.1` }],
      podIP: ip,
      podIPs: [{ ip }],
      startTime: at(i, 1),
      initContainerStatuses: [{ name: 'sickbay-shim-install', state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: at(i, 1), finishedAt: at(i, 2) } }, lastState: {}, ready: true, restartCount: 0, image: 'sickbay.local/sickbay-shim:dev', imageID: 'sha256:abc', containerID: `containerd://${'a'.repeat(64)}`, started: false }],
      containerStatuses: [{ name: 'web', state: { running: { startedAt: at(i, 2) } }, lastState: {}, ready: true, restartCount: 0, image: 'example.com/web:1', imageID: 'sha256:def', containerID: `containerd://${'b'.repeat(64)}`, started: true }],
      qosClass: 'BestEffort',
    },
  });
}

const texts = Array.from({ length: N }, (_, i) => podJson(i));
const ways: Record<string, (p: V1Pod) => { metadata?: { name?: string; namespace?: string } }> = {
  'as sent, less managedFields': (p) => {
    const { managedFields: _, ...metadata } = p.metadata!;
    return { ...p, metadata };
  },
  podForCache: podForCache,
};
const results = new Map<string, number[]>(Object.keys(ways).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, keep] of Object.entries(ways)) {
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    const cache = new Map<string, V1Pod>();
    for (const t of texts) {
      const p = keep(JSON.parse(t) as V1Pod);
      cache.set(`${p.metadata!.namespace}/${p.metadata!.name}`, p);
    }
    gc();
    gc();
    results.get(name)!.push((process.memoryUsage().heapUsed - before) / N);
    cache.clear();
  }
}
console.log(`${N} pods, ${ROUNDS} rounds alternated; V8 heap per cached pod (median of rounds; Map entry and key included):`);
for (const [name, xs] of results) console.log(`  ${name.padEnd(28)} ${median(xs).toFixed(0)} B  (rounds: ${xs.map((x) => x.toFixed(0)).join(', ')})`);
const [full, slim] = [...results.values()].map(median) as [number, number];
console.log(`  podForCache keeps ${((slim / full) * 100).toFixed(0)}% of it`);
