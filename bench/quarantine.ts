// BENCH_PODS pods (default 1000) in 20 Deployments on BENCH_NODES kwok nodes (50); make
// BENCH_FAIL (50) of them NotReady at once and time, per pod, from the moment the
// NotReady request is written to (a) quarantined (label seen on a watch) and (b) its
// address gone from the Service's ready endpoints. sickbay runs as its own process
// (`sickbay serve`, grace 0 s, rate limit off) with its webhooks registered; its resident
// memory and worst event-loop lag come from /proc and its own /metrics.
//   npm run bench:quarantine
import { readFileSync } from 'node:fs';
import { DiscoveryV1Api, PatchStrategy, setHeaderOptions, Watch } from '@kubernetes/client-node';
import { SIMULATE_READY_ANNOTATION } from '../src/dev/kwok-config.js';
import { waitFor } from '../src/util/wait.js';
import { createNamespace, createWebApp, isReady, startCluster } from '../tests/support/cluster.js';
import { request } from '../tests/support/https.js';
import { SICKBAY_NS, type SickbayProcess, spawnSickbay, waitForInjection } from '../tests/support/sickbay.js';
import { registerWebhooks } from '../src/dev/local-install.js';

const PODS = Number(process.env.BENCH_PODS ?? 1000);
const NODES = Number(process.env.BENCH_NODES ?? 50);
const FAIL = Number(process.env.BENCH_FAIL ?? 50);
const DEPLOYMENTS = 20;
const ns = 'bench';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

// BENCH_CLUSTER_DIR keeps the control plane's directory (its logs) after the run.
const t = await startCluster({ nodes: NODES, log: () => undefined, dir: process.env.BENCH_CLUSTER_DIR });
try {
  const env = {
    SICKBAY_CONTROLLERS: 'true',
    SICKBAY_NOT_READY_GRACE: '0s',
    SICKBAY_QUARANTINE_RATE_PER_MINUTE: '100000',
    SICKBAY_DIAGNOSTICS: 'false',
    // Creating thousands of pods takes kwok minutes; pods waiting that long to turn Ready
    // are not what this benchmark measures.
    SICKBAY_NEVER_READY_AFTER: '1h',
    SICKBAY_LOG_LEVEL: 'warn',
  };
  const sickbay = await spawnSickbay(t, 'bench', env);
  const scrapeOf = (p: SickbayProcess) => async () => (await request(p.port, p.caPem, '/metrics', { method: 'GET' })).body;
  const scrape = scrapeOf(sickbay);
  await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
  // The webhooks as installed: every pod is created through sickbay's mutation.
  await registerWebhooks(t.kc, { url: `https://127.0.0.1:${sickbay.port}`, caPem: sickbay.caPem, ownNamespace: SICKBAY_NS });
  await waitForInjection(t.core, ns);
  const perDeployment = Math.ceil(PODS / DEPLOYMENTS);
  const started = Date.now();
  let lastProgress = started;
  for (let d = 0; d < DEPLOYMENTS; d++) {
    await createWebApp(t, ns, `app-${d}`, perDeployment, { annotations: { 'sickbay.io/max-quarantined': String(FAIL) } });
  }
  // Deployment status, not a pod list: listing 10,000 pods every 2 s is load of its own.
  await waitFor(
    `${PODS} ready pods`,
    async () => {
      const deployments = (await t.apps.listNamespacedDeployment({ namespace: ns })).items;
      const ready = deployments.reduce((n, d) => n + (d.status?.readyReplicas ?? 0), 0);
      if (Date.now() - lastProgress > 30_000) {
        lastProgress = Date.now();
        console.log(`  ${ready} ready after ${((Date.now() - started) / 1000).toFixed(0)} s`);
      }
      return ready >= perDeployment * DEPLOYMENTS;
    },
    { timeoutMs: 900_000, intervalMs: 2000 },
  );
  console.log(`${perDeployment * DEPLOYMENTS} pods ready on ${NODES} nodes in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  await new Promise((r) => setTimeout(r, 5000)); // let sickbay's caches settle
  const afterCreate = await scrape();
  console.log(afterCreate.split('\n').filter((l) => /^sickbay_(admission_requests_total|uninjected_pods)/.test(l)).map((l) => `  ${l}`).join('\n'));
  console.log(`  sickbay's mutate answer time: p50 ≤ ${histogramQuantile(afterCreate, 'mutate', 0.5)} s, p99 ≤ ${histogramQuantile(afterCreate, 'mutate', 0.99)} s (histogram bucket bounds)`);
  const rssBefore = rssMiB(sickbay.pid);

  // Listing: a second replica started now lists every pod, ReplicaSet, Service... at once
  // (as one does after a restart or on a new leader). Its worst event-loop lag from the
  // moment it serves to the moment its caches are synced is the "while listing" figure.
  // BENCH_LISTINGS (1) replicas one after another; BENCH_LISTING_NODE_OPTIONS, variants
  // of NODE_OPTIONS separated by "|", alternates them (e.g. "|--max-semi-space-size=4":
  // the default, then 4 MiB semi-spaces, and again).
  {
    const variants = (process.env.BENCH_LISTING_NODE_OPTIONS ?? '').split('|');
    const runs = Number(process.env.BENCH_LISTINGS ?? 1);
    const lags = new Map<string, number[]>(variants.map((v) => [v, []]));
    for (let i = 0; i < runs; i++) {
      const variant = variants[i % variants.length]!;
      const standby = await spawnSickbay(t, 'bench-standby', variant ? { ...env, NODE_OPTIONS: variant } : env);
      const get = (path: string) => request(standby.port, standby.caPem, path, { method: 'GET' }).then((r) => r.status, () => 0);
      await waitFor('the second replica to serve', async () => (await get('/healthz')) === 200, { timeoutMs: 60_000, intervalMs: 50 });
      await scrapeOf(standby)(); // resets the lag maximum: what follows is the listing
      const listStarted = performance.now();
      await waitFor('the second replica to sync its caches', async () => (await get('/readyz')) === 200, { timeoutMs: 600_000, intervalMs: 100 });
      const listMs = performance.now() - listStarted;
      const m = await scrapeOf(standby)();
      const listLag = Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(m)?.[1] ?? NaN) * 1000;
      lags.get(variant)!.push(listLag);
      const with_ = variant ? ` (NODE_OPTIONS=${variant})` : '';
      console.log(`a second replica${with_} listed the cluster (${PODS} pods) and synced in ${(listMs / 1000).toFixed(1)} s: worst event-loop lag ${listLag.toFixed(0)} ms, resident ${rssMiB(standby.pid).toFixed(0)} MiB`);
      standby.kill('SIGTERM');
      await standby.exited;
    }
    if (runs > 1) {
      for (const [variant, xs] of lags) console.log(`  listing lag${variant ? ` with ${variant}` : ''}: median ${pct(xs, 50).toFixed(0)} ms of ${xs.map((x) => x.toFixed(0)).join(', ')}`);
    }
  }

  // Victims spread over the Deployments.
  const podList = await t.core.listNamespacedPod({ namespace: ns });
  const all = podList.items.filter(isReady);
  const victims = all.filter((_, i) => i % Math.floor(all.length / FAIL) === 0).slice(0, FAIL);
  const ipOf = new Map(victims.map((p) => [p.metadata!.name!, p.status!.podIP!]));
  const requested = new Map<string, number>();
  const t0 = new Map<string, number>(); // NotReady written: the watch first sees Ready=False
  const quarantined = new Map<string, number>();
  const unendpointed = new Map<string, number>();

  const watch = new Watch(t.kc);
  // From the list's version: no replay of 10,000 ADDED events. A watch that ends is a
  // failed measurement, so it says so.
  let measuring = true;
  const watchEnded = (what: string) => (err: unknown) => {
    if (err && measuring) console.log(`the ${what} watch ended: ${String((err as Error)?.message ?? err)}`);
  };
  const podWatch = await watch.watch(`/api/v1/namespaces/${ns}/pods`, { resourceVersion: podList.metadata?.resourceVersion }, (_phase: string, pod: { metadata?: { name?: string; labels?: Record<string, string> }; status?: { conditions?: Array<{ type: string; status: string }> } }) => {
    const name = pod.metadata?.name ?? '';
    const notReady = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'False');
    if (ipOf.has(name) && requested.has(name) && notReady && !t0.has(name)) t0.set(name, performance.now());
    if (ipOf.has(name) && pod.metadata?.labels?.['sickbay.io/status'] === 'quarantined' && !quarantined.has(name)) quarantined.set(name, performance.now());
  }, watchEnded('pod'));
  const slices = await t.kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({ namespace: ns });
  const readyIps = new Map<string, Set<string>>(); // slice name -> ready addresses
  const readyOf = (slice: { endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean } }> }) =>
    new Set((slice.endpoints ?? []).filter((e) => e.conditions?.ready).flatMap((e) => e.addresses));
  for (const s of slices.items) readyIps.set(s.metadata?.name ?? '', readyOf(s));
  const epWatch = await watch.watch(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, { resourceVersion: slices.metadata?.resourceVersion }, (phase: string, slice: { metadata?: { name?: string }; endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean } }> }) => {
    readyIps.set(slice.metadata?.name ?? '', phase === 'DELETED' ? new Set() : readyOf(slice));
    const now = performance.now();
    for (const [name, ip] of ipOf) {
      if (!t0.has(name) || unendpointed.has(name)) continue;
      if (![...readyIps.values()].some((s) => s.has(ip))) unendpointed.set(name, now);
    }
  }, watchEnded('EndpointSlice'));
  await new Promise((r) => setTimeout(r, 2000));
  const before = await scrape(); // prom-client resets the event-loop lag maximum at each scrape

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
    const m = (await scrape()).split('\n').filter((l) => /^sickbay_(quarantine|pod_deletions|reconcile_errors|workqueue|informer_restarts|uninjected|leader|skips)/.test(l));
    console.log(`${(err as Error).message}: of ${victims.length}, NotReady seen ${t0.size}, quarantined ${quarantined.size}, out of the endpoints ${unendpointed.size}`);
    console.log(m.join('\n'));
    console.log(sickbay.output().split('\n').slice(-15).join('\n'));
    throw err;
  });
  measuring = false;
  podWatch.abort();
  epWatch.abort();

  const q = victims.map((p) => quarantined.get(p.metadata!.name!)! - t0.get(p.metadata!.name!)!);
  const e = victims.map((p) => unendpointed.get(p.metadata!.name!)! - t0.get(p.metadata!.name!)!);
  const k = victims.map((p) => t0.get(p.metadata!.name!)! - requested.get(p.metadata!.name!)!);
  const end = await scrape();
  const lag = Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(end)?.[1] ?? NaN);
  console.log(`${FAIL} of ${PODS} pods made NotReady at once (grace 0 s); times from the moment the watch sees Ready=False:`);
  console.log(`  (kwok writing NotReady after the request: p50 ${pct(k, 50).toFixed(0)} ms, p99 ${pct(k, 99).toFixed(0)} ms; not sickbay's)`);
  console.log(`  NotReady seen -> quarantined:            p50 ${pct(q, 50).toFixed(0)} ms, p99 ${pct(q, 99).toFixed(0)} ms, max ${Math.max(...q).toFixed(0)} ms`);
  console.log(`  NotReady seen -> gone from EndpointSlice: p50 ${pct(e, 50).toFixed(0)} ms, p99 ${pct(e, 99).toFixed(0)} ms, max ${Math.max(...e).toFixed(0)} ms`);
  console.log(`  sickbay's own view (sickbay_time_to_quarantine_seconds, from its watch seeing NotReady): ${quantilesOf(end, 'sickbay_time_to_quarantine_seconds')}`);
  const isolation = (name: string, label: string) => quantilesOf(end, name, `${label}="pod-isolation"`, before, ['0.01', '0.1', '0.5', '1', '2']);
  console.log(`  during the burst, pod-isolation keys waited for a worker: ${isolation('sickbay_workqueue_wait_seconds', 'queue')}`);
  console.log(`  and its reconciles took (API calls included): ${isolation('sickbay_reconcile_duration_seconds', 'controller')}`);
  console.log(`  sickbay event loop: worst lag ${(lag * 1000).toFixed(0)} ms during the burst (nodejs_eventloop_lag_max_seconds)`);
  console.log(`  sickbay resident memory: ${rssBefore.toFixed(0)} MiB before, ${rssMiB(sickbay.pid).toFixed(0)} MiB after`);
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(end)?.[1] ?? NaN) / 2 ** 20;
  console.log(`  of which V8 heap used ${gauge('nodejs_heap_size_used_bytes').toFixed(0)} MiB (total ${gauge('nodejs_heap_size_total_bytes').toFixed(0)} MiB), external ${gauge('nodejs_external_memory_bytes').toFixed(0)} MiB`);
  sickbay.kill('SIGTERM');
  await sickbay.exited;
} finally {
  await t.stop();
}

/** The buckets of histogram `name` in a scrape, as [le, count]; only the series with `label` if given. */
function bucketsOf(metrics: string, name: string, label?: string): Array<readonly [string, number]> {
  return [...metrics.matchAll(new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\d+)$`, 'gm'))]
    .filter((m) => !label || m[1]!.split(',').includes(label))
    .map((m) => [/le="([^"]+)"/.exec(m[1]!)![1]!, Number(m[2])] as const);
}

/** The upper bound of the histogram bucket that holds quantile q of sickbay_admission_duration_seconds. */
function histogramQuantile(metrics: string, webhook: string, q: number): string {
  const buckets = bucketsOf(metrics, 'sickbay_admission_duration_seconds', `webhook="${webhook}"`);
  const total = buckets.at(-1)?.[1] ?? 0;
  return buckets.find(([, n]) => n >= q * total)?.[0] ?? '?';
}

/**
 * How many observations of histogram `name` (the series with label `label`, if given)
 * fell at or under each of `bounds`, as "≤0.5 s 40/50"; with `since`, only those made
 * after that scrape.
 */
function quantilesOf(metrics: string, name: string, label?: string, since?: string, bounds = ['0.25', '0.5', '1', '2']): string {
  const base = new Map(since ? bucketsOf(since, name, label) : []);
  const buckets = bucketsOf(metrics, name, label).map(([le, n]) => [le, n - (base.get(le) ?? 0)] as const);
  const total = buckets.at(-1)?.[1] ?? 0;
  return buckets.filter(([le]) => bounds.includes(le)).map(([le, n]) => `≤${le} s ${n}/${total}`).join(', ');
}
