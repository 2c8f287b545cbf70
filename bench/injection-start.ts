// What injection adds to a pod's start, on the real node (containerd, a real kubelet): the
// same Deployment, scaled from 0 to BENCH_BATCH (5) pods, in a namespace sickbay does not
// inject (plain) and in one it does, with the shim delivered each way sickbay can: by an
// init container and by an image volume. The three alternate batch by batch (the order
// rotating) until BENCH_PODS (20) pods of each have started. One `sickbay serve` in
// SICKBAY_SHIM_DELIVERY=auto does both injections: alone on the real node it mounts the
// image volume; a Node object of an older runtime (unschedulable, nothing runs there) makes
// it use the init container until it is removed; a dry-run pod checks each switch before
// the batch. Per pod: from its creation (the watch's ADDED) to Ready (the watch's update
// with Ready=True), both on this process's clock; and the pod object's size (its JSON as
// the API server returns it). The app is the workload image's shell, a readiness probe of
// its own (exec `true` every second), so Ready measures the start, not a probe's period.
// BENCH_PLAIN_INIT=1 gives the plain pods an init container of their own (the same image,
// `true`): what any init container costs a start on this kubelet.
//   sudo npm run bench:injection-start
import type { V1Pod } from '@kubernetes/client-node';
import { SHIM_IMAGE_VOLUME } from '../src/core/names.js';
import { IMAGES } from '../dev/images.js';
import { REAL_NODE } from '../dev/real-node.js';
import { registerWebhooks } from '../dev/local-install.js';
import { mergePatch } from '../src/kube/api.js';
import { sleep, waitFor } from '../src/util/wait.js';
import { createNamespace, createNodeOfVersions, startCluster } from '../tests/support/cluster.js';
import { SICKBAY_NS, spawnSickbay, waitForInjection } from '../tests/support/sickbay.js';
import { keepWatching, median, pct } from './support.js';

const PODS = Number(process.env.BENCH_PODS ?? 20);
const BATCH = Number(process.env.BENCH_BATCH ?? 5);
const PLAIN_INIT = process.env.BENCH_PLAIN_INIT === '1';
type Variant = 'plain' | 'init-container' | 'image-volume';
const VARIANTS: Variant[] = ['plain', 'init-container', 'image-volume'];
const nsOf = (v: Variant) => (v === 'plain' ? 'plain' : 'injected');
const OLD_NODE = 'bench-old-runtime';
const t = await startCluster({ nodes: 0, realNode: true, log: () => undefined });
try {
  const sickbay = await spawnSickbay(t, 'bench-injection-start', {
    SICKBAY_CONTROLLERS: 'true',
    SICKBAY_SHIM_DELIVERY: 'auto',
    SICKBAY_SHIM_IMAGE: IMAGES.shim,
    SICKBAY_SHIM_SOURCE: '/opt/sickbay/shim',
    SICKBAY_LOG_LEVEL: 'warn',
  });
  await registerWebhooks(t.kc, { url: sickbay.url, caPem: sickbay.caPem, ownNamespace: SICKBAY_NS });
  await createNamespace(t.core, 'injected', { 'sickbay.io/injection': 'enabled' });
  await createNamespace(t.core, 'plain');
  await waitForInjection(t.core, 'injected');

  /** Makes sickbay's `auto` choose `v`'s delivery, and waits until a dry-run pod shows it does. */
  async function deliver(v: Exclude<Variant, 'plain'>) {
    const exists = await t.core.readNode({ name: OLD_NODE }).then(() => true, () => false);
    if (v === 'init-container' && !exists) {
      await createNodeOfVersions(t.core, OLD_NODE, { kubeletVersion: 'v1.34.2', containerRuntimeVersion: 'containerd://1.7.27' });
    }
    if (v === 'image-volume' && exists) await t.core.deleteNode({ name: OLD_NODE });
    await waitFor(`sickbay to inject by ${v}`, async () => {
      const p = await t.core.createNamespacedPod({ namespace: 'injected', dryRun: 'All', body: { metadata: { generateName: 'probe-' }, spec: { containers: [{ name: 'app', image: IMAGES.workload, command: ['true'] }] } } });
      return (p.spec?.volumes?.some((x) => x.name === SHIM_IMAGE_VOLUME) ? 'image-volume' : 'init-container') === v;
    }, { timeoutMs: 30_000, intervalMs: 200 });
  }

  const starts: Record<Variant, number[]> = { plain: [], 'init-container': [], 'image-volume': [] };
  const bytes: Record<Variant, number[]> = { plain: [], 'init-container': [], 'image-volume': [] };
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

  /** One batch of `v`: scale 0 -> BATCH, each pod's creation -> Ready, then back to 0. */
  async function batch(v: Variant) {
    const ns = nsOf(v);
    if (v !== 'plain') await deliver(v);
    const added = new Map<string, number>();
    const ready = new Map<string, number>();
    const stop = await keepWatching<V1Pod>(t.kc, `/api/v1/namespaces/${ns}/pods`, undefined, (type, pod) => {
      const uid = pod.metadata!.uid!;
      if (type === 'ADDED' && !added.has(uid)) {
        added.set(uid, performance.now());
        bytes[v].push(Buffer.byteLength(JSON.stringify(pod)));
      }
      if (pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && !ready.has(uid)) ready.set(uid, performance.now());
    });
    await t.apps.patchNamespacedDeployment({ name: 'app', namespace: ns, body: { spec: { replicas: BATCH } } }, mergePatch);
    await waitFor(`${BATCH} ready pods in ${ns}`, async () => ready.size >= BATCH, { timeoutMs: 180_000, intervalMs: 100 });
    stop();
    for (const [uid, at] of ready) starts[v].push(at - added.get(uid)!);
    await t.apps.patchNamespacedDeployment({ name: 'app', namespace: ns, body: { spec: { replicas: 0 } } }, mergePatch);
    await waitFor(`the ${ns} pods gone`, async () => (await t.core.listNamespacedPod({ namespace: ns })).items.length === 0, { timeoutMs: 120_000, intervalMs: 500 });
    await sleep(1000);
  }

  for (let i = 0; VARIANTS.some((v) => starts[v].length < PODS); i++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const v = VARIANTS[(i + k) % VARIANTS.length]!;
      if (starts[v].length >= PODS) continue;
      await batch(v);
      console.log(`batch ${i + 1} ${v.padEnd(14)}: create -> Ready ${starts[v].slice(-BATCH).map((ms) => ms.toFixed(0)).join(', ')} ms`);
    }
  }
  const row = (v: Variant) => `| ${v} | ${starts[v].length} | ${median(starts[v]).toFixed(0)} ms | ${pct(starts[v], 99).toFixed(0)} ms | ${median(bytes[v])} |`;
  console.log('\n| pods | n | create -> Ready p50 | p99 | pod object (bytes) |');
  console.log('|---|---|---|---|---|');
  console.log(`${row('plain')}${PLAIN_INIT ? ' (with an init container of its own)' : ''}`);
  console.log(row('init-container'));
  console.log(row('image-volume'));
  for (const v of ['init-container', 'image-volume'] as const) {
    console.log(`injection by ${v} adds ${(median(starts[v]) - median(starts.plain)).toFixed(0)} ms at p50 (issue 32's target: <= 200 ms) and ${median(bytes[v]) - median(bytes.plain)} bytes to each pod object`);
  }
  console.log(`image volume / init container, p50: ${(median(starts['image-volume']) / median(starts['init-container'])).toFixed(2)}`);
  sickbay.kill('SIGTERM');
  await sickbay.exited;
} finally {
  await t.stop();
}
process.exit(0);
