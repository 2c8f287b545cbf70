// BENCH_PODS pods (default 1000) in 20 Deployments on BENCH_NODES kwok nodes (50); make
// BENCH_FAIL (50) of them NotReady at once and time, per pod, from the moment the
// NotReady request is written to (a) quarantined (label seen on a watch) and (b) its
// address gone from the Service's ready endpoints. sickbay runs as its own process
// (`sickbay serve`, grace 0 s, rate limit off); its resident memory and worst event-loop
// lag come from /proc and its own /metrics.
//   npm run bench:quarantine
import { readFileSync } from 'node:fs';
import { PatchStrategy, setHeaderOptions, Watch } from '@kubernetes/client-node';
import { SIMULATE_READY_ANNOTATION } from '../src/dev/kwok-config.js';
import { waitFor } from '../src/util/wait.js';
import { createNamespace, createWebApp, isReady, startCluster } from '../tests/support/cluster.js';
import { request } from '../tests/support/https.js';
import { spawnSickbay } from '../tests/support/sickbay.js';

const PODS = Number(process.env.BENCH_PODS ?? 1000);
const NODES = Number(process.env.BENCH_NODES ?? 50);
const FAIL = Number(process.env.BENCH_FAIL ?? 50);
const DEPLOYMENTS = 20;
const ns = 'bench';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

const t = await startCluster({ nodes: NODES, log: () => undefined });
try {
  const sickbay = await spawnSickbay(t, 'bench', {
    SICKBAY_CONTROLLERS: 'true',
    SICKBAY_NOT_READY_GRACE: '0s',
    SICKBAY_QUARANTINE_RATE_PER_MINUTE: '100000',
    SICKBAY_DIAGNOSTICS: 'false',
    // Creating thousands of pods takes kwok minutes; pods waiting that long to turn Ready
    // are not what this benchmark measures.
    SICKBAY_NEVER_READY_AFTER: '1h',
    SICKBAY_LOG_LEVEL: 'warn',
  });
  await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
  const perDeployment = Math.ceil(PODS / DEPLOYMENTS);
  const started = Date.now();
  for (let d = 0; d < DEPLOYMENTS; d++) {
    await createWebApp(t, ns, `app-${d}`, perDeployment, { annotations: { 'sickbay.io/max-quarantined': String(FAIL) } });
  }
  await waitFor(
    `${PODS} ready pods`,
    async () => {
      let ready = 0;
      let cont: string | undefined;
      do {
        const page = await t.core.listNamespacedPod({ namespace: ns, limit: 500, _continue: cont });
        ready += page.items.filter(isReady).length;
        cont = page.metadata?._continue;
      } while (cont);
      return ready >= perDeployment * DEPLOYMENTS;
    },
    { timeoutMs: 900_000, intervalMs: 2000 },
  );
  console.log(`${perDeployment * DEPLOYMENTS} pods ready on ${NODES} nodes in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  await new Promise((r) => setTimeout(r, 5000)); // let sickbay's caches settle
  const rssBefore = rssMiB(sickbay.pid);

  // Victims spread over the Deployments.
  const all = (await t.core.listNamespacedPod({ namespace: ns })).items.filter(isReady);
  const victims = all.filter((_, i) => i % Math.floor(all.length / FAIL) === 0).slice(0, FAIL);
  const ipOf = new Map(victims.map((p) => [p.metadata!.name!, p.status!.podIP!]));
  const requested = new Map<string, number>();
  const t0 = new Map<string, number>(); // NotReady written: the watch first sees Ready=False
  const quarantined = new Map<string, number>();
  const unendpointed = new Map<string, number>();

  const watch = new Watch(t.kc);
  const podWatch = await watch.watch(`/api/v1/namespaces/${ns}/pods`, {}, (_phase: string, pod: { metadata?: { name?: string; labels?: Record<string, string> }; status?: { conditions?: Array<{ type: string; status: string }> } }) => {
    const name = pod.metadata?.name ?? '';
    const notReady = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'False');
    if (ipOf.has(name) && requested.has(name) && notReady && !t0.has(name)) t0.set(name, performance.now());
    if (ipOf.has(name) && pod.metadata?.labels?.['sickbay.io/status'] === 'quarantined' && !quarantined.has(name)) quarantined.set(name, performance.now());
  }, () => undefined);
  const readyIps = new Map<string, Set<string>>(); // slice name -> ready addresses
  const epWatch = await watch.watch(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, {}, (phase: string, slice: { metadata?: { name?: string }; endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean } }> }) => {
    const ips = new Set((slice.endpoints ?? []).filter((e) => e.conditions?.ready).flatMap((e) => e.addresses));
    readyIps.set(slice.metadata?.name ?? '', phase === 'DELETED' ? new Set() : ips);
    const now = performance.now();
    for (const [name, ip] of ipOf) {
      if (!t0.has(name) || unendpointed.has(name)) continue;
      if (![...readyIps.values()].some((s) => s.has(ip))) unendpointed.set(name, now);
    }
  }, () => undefined);
  await new Promise((r) => setTimeout(r, 2000));
  await maxEventLoopLag(sickbay.port, sickbay.caPem); // prom-client resets the maximum at each scrape

  await Promise.all(
    victims.map(async (p) => {
      requested.set(p.metadata!.name!, performance.now());
      await t.core.patchNamespacedPod({ name: p.metadata!.name!, namespace: ns, body: { metadata: { annotations: { [SIMULATE_READY_ANNOTATION]: 'false' } } } }, mergePatch);
    }),
  );
  await waitFor('every victim quarantined and out of the endpoints', () => quarantined.size === victims.length && unendpointed.size === victims.length, {
    timeoutMs: 120_000,
    intervalMs: 50,
  }).catch(async (err) => {
    const res = await request(sickbay.port, sickbay.caPem, '/metrics', { method: 'GET' });
    const m = res.body.split('\n').filter((l) => /^sickbay_(quarantine|pod_deletions|reconcile_errors|workqueue|informer_restarts)/.test(l));
    console.log(`${(err as Error).message}: of ${victims.length}, NotReady seen ${t0.size}, quarantined ${quarantined.size}, out of the endpoints ${unendpointed.size}`);
    console.log(m.join('\n'));
    console.log(sickbay.output().split('\n').slice(-15).join('\n'));
    throw err;
  });
  podWatch.abort();
  epWatch.abort();

  const q = victims.map((p) => quarantined.get(p.metadata!.name!)! - t0.get(p.metadata!.name!)!);
  const e = victims.map((p) => unendpointed.get(p.metadata!.name!)! - t0.get(p.metadata!.name!)!);
  const k = victims.map((p) => t0.get(p.metadata!.name!)! - requested.get(p.metadata!.name!)!);
  const lag = await maxEventLoopLag(sickbay.port, sickbay.caPem);
  console.log(`${FAIL} of ${PODS} pods made NotReady at once (grace 0 s); times from the moment the watch sees Ready=False:`);
  console.log(`  (kwok writing NotReady after the request: p50 ${pct(k, 50).toFixed(0)} ms, p99 ${pct(k, 99).toFixed(0)} ms; not sickbay's)`);
  console.log(`  NotReady requested -> quarantined:            p50 ${pct(q, 50).toFixed(0)} ms, p99 ${pct(q, 99).toFixed(0)} ms, max ${Math.max(...q).toFixed(0)} ms`);
  console.log(`  NotReady requested -> gone from EndpointSlice: p50 ${pct(e, 50).toFixed(0)} ms, p99 ${pct(e, 99).toFixed(0)} ms, max ${Math.max(...e).toFixed(0)} ms`);
  console.log(`  sickbay event loop: worst lag ${(lag * 1000).toFixed(0)} ms during the burst (nodejs_eventloop_lag_max_seconds)`);
  console.log(`  sickbay resident memory: ${rssBefore.toFixed(0)} MiB before, ${rssMiB(sickbay.pid).toFixed(0)} MiB after`);
  sickbay.kill('SIGTERM');
  await sickbay.exited;
} finally {
  await t.stop();
}
async function maxEventLoopLag(port: number, ca: string): Promise<number> {
  const res = await request(port, ca, '/metrics', { method: 'GET' });
  return Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(res.body)?.[1] ?? NaN);
}
