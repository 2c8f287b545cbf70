// What injection adds to a pod's start, on the real node (containerd, a real kubelet): the
// same Deployment, scaled from 0 to BENCH_BATCH (5) pods, in a namespace sickbay injects and
// in one it does not, alternated batch by batch until BENCH_PODS (20) pods of each have
// started. Per pod: from its creation (the watch's ADDED) to Ready (the watch's update with
// Ready=True), both on this process's clock; and the bytes injection adds to the pod object
// (its JSON as the API server returns it). sickbay serve runs as its own process, its
// webhooks registered; the app is the workload image's shell, a readiness probe of its own
// (exec `true` every second), so Ready measures the start, not a probe's period.
// BENCH_PLAIN_INIT=1 gives the plain pods an init container of their own (the same image,
// `true`): what any init container costs a start on this kubelet, against what the shim's does.
//   sudo npm run bench:injection-start
import type { V1Pod } from '@kubernetes/client-node';
import { IMAGES } from '../src/dev/images.js';
import { REAL_NODE } from '../src/dev/real-node.js';
import { registerWebhooks } from '../src/dev/local-install.js';
import { mergePatch } from '../src/kube/api.js';
import { sleep, waitFor } from '../src/util/wait.js';
import { createNamespace, startCluster } from '../tests/support/cluster.js';
import { SICKBAY_NS, spawnSickbay, waitForInjection } from '../tests/support/sickbay.js';
import { keepWatching, median, pct } from './support.js';

const PODS = Number(process.env.BENCH_PODS ?? 20);
const BATCH = Number(process.env.BENCH_BATCH ?? 5);
const PLAIN_INIT = process.env.BENCH_PLAIN_INIT === '1';
const t = await startCluster({ nodes: 1, realNode: true, log: () => undefined });
try {
  const sickbay = await spawnSickbay(t, 'bench-injection-start', {
    SICKBAY_CONTROLLERS: 'false',
    SICKBAY_SHIM_IMAGE: IMAGES.shim,
    SICKBAY_SHIM_SOURCE: '/opt/sickbay/shim',
    SICKBAY_LOG_LEVEL: 'warn',
  });
  await registerWebhooks(t.kc, { url: sickbay.url, caPem: sickbay.caPem, ownNamespace: SICKBAY_NS });
  await createNamespace(t.core, 'injected', { 'sickbay.io/injection': 'enabled' });
  await createNamespace(t.core, 'plain');
  await waitForInjection(t.core, 'injected');

  const starts: Record<'injected' | 'plain', number[]> = { injected: [], plain: [] };
  const bytes: Record<'injected' | 'plain', number[]> = { injected: [], plain: [] };
  for (const ns of ['injected', 'plain'] as const) {
    await t.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'app' },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: 'app' } },
          template: {
            metadata: { labels: { app: 'app' } },
            spec: {
              nodeSelector: { [REAL_NODE.label]: 'real' },
              terminationGracePeriodSeconds: 0,
              ...(ns === 'plain' && PLAIN_INIT ? { initContainers: [{ name: 'init', image: IMAGES.workload, imagePullPolicy: 'Never', command: ['true'] }] } : {}),
              containers: [
                {
                  name: 'app',
                  image: IMAGES.workload,
                  imagePullPolicy: 'Never',
                  command: ['sh', '-c', 'while true; do sleep 1; done'],
                  readinessProbe: { exec: { command: ['true'] }, periodSeconds: 1 },
                  securityContext: { runAsUser: 1000, allowPrivilegeEscalation: false },
                },
              ],
            },
          },
        },
      },
    });
  }

  /** One batch in `ns`: scale 0 -> BATCH, each pod's creation -> Ready, then back to 0. */
  async function batch(ns: 'injected' | 'plain') {
    const added = new Map<string, number>();
    const ready = new Map<string, number>();
    const stop = await keepWatching<V1Pod>(t.kc, `/api/v1/namespaces/${ns}/pods`, undefined, (type, pod) => {
      const uid = pod.metadata!.uid!;
      if (type === 'ADDED' && !added.has(uid)) {
        added.set(uid, performance.now());
        bytes[ns].push(Buffer.byteLength(JSON.stringify(pod)));
      }
      if (pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && !ready.has(uid)) ready.set(uid, performance.now());
    });
    await t.apps.patchNamespacedDeployment({ name: 'app', namespace: ns, body: { spec: { replicas: BATCH } } }, mergePatch);
    await waitFor(`${BATCH} ready pods in ${ns}`, async () => ready.size >= BATCH, { timeoutMs: 180_000, intervalMs: 100 });
    stop();
    for (const [uid, at] of ready) starts[ns].push(at - added.get(uid)!);
    await t.apps.patchNamespacedDeployment({ name: 'app', namespace: ns, body: { spec: { replicas: 0 } } }, mergePatch);
    await waitFor(`the ${ns} pods gone`, async () => (await t.core.listNamespacedPod({ namespace: ns })).items.length === 0, { timeoutMs: 120_000, intervalMs: 500 });
    await sleep(1000);
  }

  for (let i = 0; starts.injected.length < PODS || starts.plain.length < PODS; i++) {
    for (const ns of (i % 2 ? ['plain', 'injected'] : ['injected', 'plain']) as Array<'injected' | 'plain'>) {
      if (starts[ns].length >= PODS) continue;
      await batch(ns);
      console.log(`batch ${i + 1} ${ns.padEnd(8)}: create -> Ready ${starts[ns].slice(-BATCH).map((ms) => ms.toFixed(0)).join(', ')} ms`);
    }
  }
  const row = (ns: 'injected' | 'plain') =>
    `| ${ns} | ${starts[ns].length} | ${median(starts[ns]).toFixed(0)} ms | ${pct(starts[ns], 99).toFixed(0)} ms | ${median(bytes[ns])} |`;
  console.log('\n| pods | n | create -> Ready p50 | p99 | pod object (bytes) |');
  console.log('|---|---|---|---|---|');
  console.log(`${row('plain')}${PLAIN_INIT ? ' (with an init container of its own)' : ''}`);
  console.log(row('injected'));
  console.log(`\ninjection adds ${(median(starts.injected) - median(starts.plain)).toFixed(0)} ms at p50 (issue 32's target: <= 200 ms) and ${median(bytes.injected) - median(bytes.plain)} bytes to each pod object`);
  sickbay.kill('SIGTERM');
  await sickbay.exited;
} finally {
  await t.stop();
}
process.exit(0);
