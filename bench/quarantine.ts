// The pod path, end to end, on BENCH_PODS pods (1000) in BENCH_DEPLOYMENTS Deployments
// (20, each with a Service) on BENCH_NODES kwok nodes (50), sickbay as its own process
// with its webhooks registered (every pod is created through its mutation). One run
// measures, side by side:
//
// - capacity: BENCH_FAIL pods (50) made NotReady at once, per pod from the moment a watch
//   sees Ready=False to (a) quarantined, (b) its address gone from the Service's ready
//   endpoints (kube-controller-manager, the Go reference) and (c) its replacement Ready;
//   rounds alternate grace 0 and the default grace (BENCH_GRACE, 10s), BENCH_ROUNDS (2)
//   of each;
// - start: before each grace-0 round the leader is restarted with one pod already
//   NotReady: process start to /healthz, to /readyz (caches synced, webhook serving) and
//   to that pod quarantined (leader, first quarantine);
// - fail-over: a second replica started (its listing), the leader killed (SIGKILL) and
//   then stopped cleanly (SIGTERM), each time with a pod made NotReady at that moment;
// - footprint: resident memory and CPU idle and during each burst, and the V8 heap by
//   constructor from heap snapshots taken before the pods exist and after (per pod).
//
// Settings: rate limit off, back-off off, diagnostics off, never-ready after 1h.
//   npm run build && SICKBAY_USE_DIST=1 npm run bench:quarantine
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DiscoveryV1Api } from '@kubernetes/client-node';
import { freePorts } from '../dev/control-plane.js';
import { SIMULATE_READY_ANNOTATION } from '../dev/kwok-config.js';
import { registerWebhooks } from '../dev/local-install.js';
import { mergePatch } from '../src/kube/api.js';
import { waitFor } from '../src/util/wait.js';
import { createNamespace, createWebApp, startCluster } from '../tests/support/cluster.js';
import { request } from '../tests/support/https.js';
import { SICKBAY_NS, type SickbayProcess, spawnSickbay, waitForInjection } from '../tests/support/sickbay.js';
import { buckets, cpuSeconds, keepWatching, pct, quantile, rssMiB, sample, underBounds } from './support.js';

const PODS = Number(process.env.BENCH_PODS ?? 1000);
const NODES = Number(process.env.BENCH_NODES ?? 50);
const FAIL = Number(process.env.BENCH_FAIL ?? 50);
const DEPLOYMENTS = Number(process.env.BENCH_DEPLOYMENTS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const GRACE = process.env.BENCH_GRACE ?? '10s';
const IDLE_S = Number(process.env.BENCH_IDLE ?? 10);
// Variants of the leader's Node flags, separated by "|", alternated round by round (e.g.
// "|--max-semi-space-size=1": the default, then 1 MiB young-generation semi-spaces).
const VARIANTS = (process.env.BENCH_NODE_OPTIONS ?? '').split('|');
const ns = 'bench';
const perDeployment = Math.ceil(PODS / DEPLOYMENTS);
const fmt = (xs: number[]) => (xs.length ? `p50 ${pct(xs, 50).toFixed(0)} ms, p99 ${pct(xs, 99).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms` : 'none');
const MiB = 2 ** 20;

// BENCH_CLUSTER_DIR keeps the control plane's directory (its logs) after the run.
const t = await startCluster({ nodes: NODES, log: () => undefined, dir: process.env.BENCH_CLUSTER_DIR });
const leaderDir = mkdtempSync(path.join(tmpdir(), 'sickbay-bench-leader-'));
const snapshots = mkdtempSync(path.join(tmpdir(), 'sickbay-bench-heap-'));
const [leaderPort] = (await freePorts(1)) as [number];
const baseEnv = {
  SICKBAY_CONTROLLERS: 'true',
  SICKBAY_QUARANTINE_RATE_PER_MINUTE: '100000',
  SICKBAY_BACKOFF_AFTER: '1000',
  SICKBAY_DIAGNOSTICS: 'false',
  // Creating thousands of pods takes kwok minutes; pods waiting that long to turn Ready
  // are not what this benchmark measures.
  SICKBAY_NEVER_READY_AFTER: '1h',
  SICKBAY_LOG_LEVEL: 'warn',
  // SIGUSR2 writes a heap snapshot (a full GC first) into `snapshots`.
  NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshots}`,
};
const withFlags = (variant: string) => ({ NODE_OPTIONS: `${baseEnv.NODE_OPTIONS} ${variant}`.trim() });
const named = (variant: string) => (variant ? ` [${variant}]` : '');
const scrape = async (p: SickbayProcess) => (await request(p.port, p.caPem, '/metrics', { method: 'GET' })).body;
const get = (p: SickbayProcess, route: string) => request(p.port, p.caPem, route, { method: 'GET' }).then((r) => r.status, () => 0);

/** Starts a replica and times it: spawned -> /healthz -> /readyz. */
async function startReplica(name: string, env: Record<string, string>, at?: { dir: string; port: number }) {
  const p = await spawnSickbay(t, name, { ...baseEnv, ...env }, at);
  const spawned = performance.now();
  let exited = false;
  void p.exited.then(() => (exited = true));
  await waitFor(`${name} to serve`, async () => {
    if (exited) throw new Error(`${name} exited: ${p.output().slice(-2000)}`);
    return (await get(p, '/healthz')) === 200;
  }, { timeoutMs: 60_000, intervalMs: 20 });
  const serving = performance.now();
  await scrape(p); // resets the event-loop lag maximum: what follows is the listing
  await waitFor(`${name} to sync its caches`, async () => (await get(p, '/readyz')) === 200, { timeoutMs: 600_000, intervalMs: 20 });
  const ready = performance.now();
  const lag = sample(await scrape(p), 'nodejs_eventloop_lag_max_seconds') * 1000;
  return { p, spawned, servingMs: serving - spawned, readyMs: ready - spawned, lag, rss: rssMiB(p.pid) };
}

/** A heap snapshot of `p` (the process collects garbage first), summed by constructor; V8 heap used just after. */
async function heapOf(p: SickbayProcess): Promise<{ byName: Map<string, { count: number; bytes: number }>; used: number }> {
  const before = new Set(readdirSync(snapshots));
  p.kill('SIGUSR2');
  const file = await waitFor('the heap snapshot', () => {
    const f = readdirSync(snapshots).find((n) => !before.has(n) && n.endsWith('.heapsnapshot'));
    if (!f) return undefined;
    // Written in one go at the end: complete once it parses.
    try {
      return { f, json: JSON.parse(readFileSync(path.join(snapshots, f), 'utf8')) };
    } catch {
      return undefined;
    }
  }, { timeoutMs: 300_000, intervalMs: 1000 });
  const used = sample(await scrape(p), 'nodejs_heap_size_used_bytes');
  rmSync(path.join(snapshots, file.f));
  const { snapshot, nodes, strings } = file.json as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const fields = snapshot.meta.node_fields;
  const [typeNames] = snapshot.meta.node_types;
  const [T, N, S] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const byName = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < nodes.length; i += fields.length) {
    const type = typeNames[nodes[i + T]!]!;
    // Objects by constructor; strings, arrays, code and the rest by kind.
    const key = type === 'object' || type === 'native' ? strings[nodes[i + N]!]! : `(${type})`;
    const e = byName.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += nodes[i + S]!;
    byName.set(key, e);
  }
  return { byName, used };
}

try {
  // The heap of a replica in an empty cluster: the reference for "per pod". (A heap
  // snapshot grows the process's resident memory, so this replica goes.)
  const empty = (await startReplica('bench-empty', { ...withFlags(VARIANTS[0]!), SICKBAY_NOT_READY_GRACE: '0s', SICKBAY_LEADER_ELECTION: 'false' })).p;
  await sleep(3000);
  const emptyRss = rssMiB(empty.pid);
  const emptyHeap = await heapOf(empty);
  empty.kill('SIGTERM');
  await empty.exited;
  let leader = (await startReplica('bench', { ...withFlags(VARIANTS[0]!), SICKBAY_NOT_READY_GRACE: '0s' }, { dir: leaderDir, port: leaderPort })).p;
  await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
  await registerWebhooks(t.kc, { url: `https://127.0.0.1:${leaderPort}`, caPem: leader.caPem, ownNamespace: SICKBAY_NS });
  await waitForInjection(t.core, ns);

  const started = Date.now();
  let lastProgress = started;
  for (let d = 0; d < DEPLOYMENTS; d++) {
    await createWebApp(t, ns, `app-${d}`, perDeployment, { annotations: { 'sickbay.io/max-quarantined': String(FAIL) } });
  }
  // Deployment status, not a pod list: listing 10,000 pods every 2 s is load of its own.
  await waitFor(`${PODS} ready pods`, async () => {
    const deployments = (await t.apps.listNamespacedDeployment({ namespace: ns })).items;
    const ready = deployments.reduce((n, d) => n + (d.status?.readyReplicas ?? 0), 0);
    if (Date.now() - lastProgress > 30_000) {
      lastProgress = Date.now();
      console.log(`  ${ready} ready after ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
    return ready >= perDeployment * DEPLOYMENTS;
  }, { timeoutMs: 900_000, intervalMs: 2000 });
  console.log(`${perDeployment * DEPLOYMENTS} pods in ${DEPLOYMENTS} Deployments ready on ${NODES} kwok nodes in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  await sleep(5000); // let sickbay's caches settle
  const afterCreate = await scrape(leader);
  const mutate = (l: string) => l.includes('webhook="mutate"');
  const mutateTimes = buckets(afterCreate, 'sickbay_admission_duration_seconds', mutate);
  console.log(`  sickbay's own /mutate time over the creation: p50 ${(quantile(mutateTimes, new Map(), 0.5).value * 1000).toFixed(2)} ms, p99 ${(quantile(mutateTimes, new Map(), 0.99).value * 1000).toFixed(2)} ms`);

  // What the measuring watches record, per pod name.
  interface Seen { app?: string; added: number; ready?: number; notReady?: number; quarantined?: number; ip?: string; unendpointed?: number }
  const pods = new Map<string, Seen>();
  const requested = new Set<string>();
  const podList = await t.core.listNamespacedPod({ namespace: ns });
  for (const p of podList.items) {
    const ready = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    pods.set(p.metadata!.name!, { app: p.metadata?.labels?.app, added: 0, ready: ready ? 0 : undefined, ip: p.status?.podIP });
  }
  type PodEvent = { metadata?: { name?: string; resourceVersion?: string; labels?: Record<string, string> }; status?: { podIP?: string; conditions?: Array<{ type: string; status: string }> } };
  const stopPods = await keepWatching<PodEvent>(t.kc, `/api/v1/namespaces/${ns}/pods`, podList.metadata?.resourceVersion, (phase, pod) => {
    const name = pod.metadata?.name ?? '';
    const now = performance.now();
    let s = pods.get(name);
    if (!s) pods.set(name, (s = { app: pod.metadata?.labels?.app, added: now }));
    if (phase === 'DELETED') return;
    s.ip ??= pod.status?.podIP;
    const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    if (ready === 'True') s.ready ??= now;
    if (ready === 'False' && requested.has(name)) s.notReady ??= now;
    if (pod.metadata?.labels?.['sickbay.io/status'] === 'quarantined') s.quarantined ??= now;
  });
  const slices = await t.kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({ namespace: ns });
  type Slice = { metadata?: { name?: string; resourceVersion?: string }; endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean } }> };
  const readyIps = new Map<string, Set<string>>(); // slice name -> ready addresses
  const readyOf = (slice: Slice) => new Set((slice.endpoints ?? []).filter((e) => e.conditions?.ready).flatMap((e) => e.addresses));
  for (const s of slices.items) readyIps.set(s.metadata?.name ?? '', readyOf(s));
  const stopSlices = await keepWatching<Slice>(t.kc, `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, slices.metadata?.resourceVersion, (phase, slice) => {
    readyIps.set(slice.metadata?.name ?? '', phase === 'DELETED' ? new Set() : readyOf(slice));
    const now = performance.now();
    for (const name of requested) {
      const s = pods.get(name)!;
      if (s.notReady === undefined || s.unendpointed !== undefined || !s.ip) continue;
      if (![...readyIps.values()].some((ips) => ips.has(s.ip!))) s.unendpointed = now;
    }
  });

  /** Ready pods in service not yet used, `n` of them, spread over the Deployments. */
  const pick = (n: number): string[] => {
    const byApp = new Map<string, string[]>();
    for (const [name, s] of pods) {
      if (s.ready === undefined || requested.has(name) || s.quarantined !== undefined || !s.app) continue;
      byApp.set(s.app, [...(byApp.get(s.app) ?? []), name]);
    }
    const out: string[] = [];
    for (let i = 0; out.length < n; i++) {
      const before = out.length;
      for (const names of byApp.values()) if (names[i] && out.length < n) out.push(names[i]!);
      if (out.length === before) throw new Error(`only ${out.length} pods left to fail`);
    }
    return out;
  };
  const makeNotReady = (names: string[]) =>
    Promise.all(names.map(async (name) => {
      requested.add(name);
      await t.core.patchNamespacedPod({ name, namespace: ns, body: { metadata: { annotations: { [SIMULATE_READY_ANNOTATION]: 'false' } } } }, mergePatch);
    }));
  const quarantinedWithin = (name: string, timeoutMs: number) => waitFor(`${name} quarantined`, () => pods.get(name)!.quarantined, { timeoutMs, intervalMs: 10 });

  const results = new Map<string, { q: number[]; e: number[]; r: number[]; rss: number[]; cpu: number[]; lag: number[]; idleCpu: number[]; idleRss: number[]; heap: number[] }>();
  const starts: Array<{ variant: string; servingMs: number; readyMs: number; firstMs: number; lag: number; rss: number }> = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const variant = VARIANTS[(round - 1) % VARIANTS.length]!;
    for (const grace of ['0s', GRACE]) {
      // A restarted leader: the scene of a new version rolled out, or a crash.
      leader.kill('SIGTERM');
      await leader.exited;
      const canary = grace === '0s' ? pick(1)[0]! : undefined;
      if (canary) {
        await makeNotReady([canary]);
        await waitFor('the canary NotReady', () => pods.get(canary)!.notReady, { timeoutMs: 60_000, intervalMs: 10 });
      }
      const r = await startReplica('bench', { ...withFlags(variant), SICKBAY_NOT_READY_GRACE: grace }, { dir: leaderDir, port: leaderPort });
      leader = r.p;
      if (canary) {
        await quarantinedWithin(canary, 120_000);
        const firstMs = pods.get(canary)!.quarantined! - r.spawned;
        starts.push({ variant, servingMs: r.servingMs, readyMs: r.readyMs, firstMs, lag: r.lag, rss: r.rss });
        console.log(`leader restarted${named(variant)}: serving ${r.servingMs.toFixed(0)} ms, ready ${r.readyMs.toFixed(0)} ms (lag ${r.lag.toFixed(0)} ms while listing), a pod NotReady before it started quarantined at ${firstMs.toFixed(0)} ms`);
      }
      await sleep(3000);
      // Idle: every pod cached, nothing to do.
      const i0 = cpuSeconds(leader.pid);
      await sleep(IDLE_S * 1000);
      const idleCpu = (cpuSeconds(leader.pid) - i0) / IDLE_S;
      const idleRss = rssMiB(leader.pid);
      const heap = sample(await scrape(leader), 'nodejs_heap_size_used_bytes') / MiB;

      const victims = pick(FAIL);
      const apps = new Set(victims.map((v) => pods.get(v)!.app!));
      const before = await scrape(leader); // resets the event-loop lag maximum
      const c0 = cpuSeconds(leader.pid);
      const burstStart = performance.now();
      let rssPeak = rssMiB(leader.pid);
      const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMiB(leader.pid))), 100);
      await makeNotReady(victims);
      // Per Deployment, the new pods of this burst that are Ready.
      const replacements = () => {
        const out = new Map<string, Seen[]>();
        for (const s of pods.values()) if (s.added > burstStart && s.ready !== undefined && s.app && apps.has(s.app)) out.set(s.app, [...(out.get(s.app) ?? []), s]);
        return out;
      };
      const count = (app: string) => victims.filter((v) => pods.get(v)!.app === app).length;
      await waitFor('every victim quarantined, out of the endpoints and replaced', () => {
        const done = victims.every((v) => pods.get(v)!.quarantined !== undefined && pods.get(v)!.unendpointed !== undefined);
        const repl = replacements();
        return done && [...apps].every((a) => (repl.get(a)?.length ?? 0) >= count(a));
      }, { timeoutMs: 180_000, intervalMs: 50 }).catch(async (err) => {
        const seen = (k: keyof Seen) => victims.filter((v) => pods.get(v)![k] !== undefined).length;
        console.log(`${(err as Error).message}: of ${victims.length}, NotReady seen ${seen('notReady')}, quarantined ${seen('quarantined')}, out of the endpoints ${seen('unendpointed')}`);
        console.log((await scrape(leader)).split('\n').filter((l) => /^sickbay_(quarantine|pod_deletions|reconcile_errors|leader|skips)/.test(l)).join('\n'));
        console.log(leader.output().split('\n').slice(-15).join('\n'));
        throw err;
      });
      clearInterval(sampler);
      const cpu = cpuSeconds(leader.pid) - c0;
      const end = await scrape(leader);
      // The n-th failing pod of a Deployment to be quarantined against its n-th new pod
      // (the ReplicaSet replaces a pod when the quarantine takes it out of its selector).
      const repl = replacements();
      const q: number[] = [];
      const e: number[] = [];
      const rd: number[] = [];
      const created: number[] = []; // quarantined -> the replacement seen created
      const started: number[] = []; // created -> Ready (scheduler and kwok)
      for (const app of apps) {
        const failed = victims.filter((v) => pods.get(v)!.app === app).map((v) => pods.get(v)!).sort((a, b) => a.quarantined! - b.quarantined!);
        const fresh = repl.get(app)!.sort((a, b) => a.added - b.added);
        failed.forEach((s, i) => {
          q.push(s.quarantined! - s.notReady!);
          e.push(s.unendpointed! - s.notReady!);
          rd.push(fresh[i]!.ready! - s.notReady!);
          created.push(fresh[i]!.added - s.quarantined!);
          started.push(fresh[i]!.ready! - fresh[i]!.added);
        });
      }
      const lag = sample(end, 'nodejs_eventloop_lag_max_seconds') * 1000;
      const key = `grace ${grace}${named(variant)}`;
      const res = results.get(key) ?? { q: [], e: [], r: [], rss: [], cpu: [], lag: [], idleCpu: [], idleRss: [], heap: [] };
      res.q.push(...q), res.e.push(...e), res.r.push(...rd), res.rss.push(rssPeak), res.cpu.push(cpu), res.lag.push(lag);
      res.idleCpu.push(idleCpu), res.idleRss.push(idleRss), res.heap.push(heap);
      results.set(key, res);
      const own = (name: string) => underBounds(buckets(end, name, (l) => l.includes('pod-isolation')), buckets(before, name, (l) => l.includes('pod-isolation')), [0.01, 0.1, 0.5, 1]);
      console.log(`round ${round}, ${key}: idle ${IDLE_S} s before: CPU ${(idleCpu * 100).toFixed(1)}% of a core, resident ${idleRss.toFixed(0)} MiB, V8 heap used ${heap.toFixed(0)} MiB`);
      console.log(`  ${FAIL} of ${PODS} pods NotReady at once; from NotReady seen:`);
      console.log(`  quarantined           ${fmt(q)}`);
      console.log(`  gone from the EndpointSlice (kube-controller-manager) ${fmt(e)}`);
      console.log(`  replacement Ready     ${fmt(rd)}`);
      console.log(`    of which quarantined -> replacement created (the ReplicaSet controller) ${fmt(created)}; created -> Ready (scheduler, kwok) ${fmt(started)}`);
      console.log(`  sickbay: CPU ${cpu.toFixed(2)} s, resident peak ${rssPeak.toFixed(0)} MiB, worst event-loop lag ${lag.toFixed(0)} ms; workqueue wait ${own('sickbay_workqueue_wait_seconds')}; reconciles ${own('sickbay_reconcile_duration_seconds')}`);
    }
  }

  // Fail-over: a second replica lists the cluster; the leader dies; then hands over cleanly.
  const last = VARIANTS[(ROUNDS - 1) % VARIANTS.length]!;
  const standby = await startReplica('bench-standby', { ...withFlags(last), SICKBAY_NOT_READY_GRACE: '0s' });
  console.log(`a second replica: serving ${standby.servingMs.toFixed(0)} ms, synced ${standby.readyMs.toFixed(0)} ms (worst lag ${standby.lag.toFixed(0)} ms while listing), resident ${standby.rss.toFixed(0)} MiB`);
  await sleep(3000);
  const killed = pick(1)[0]!;
  leader.kill('SIGKILL');
  const killedAt = performance.now();
  await makeNotReady([killed]);
  await leader.exited;
  await quarantinedWithin(killed, 120_000);
  const hardMs = pods.get(killed)!.quarantined! - killedAt;
  // The old leader back (its port is the webhooks'), as a standby now.
  leader = (await startReplica('bench', { ...withFlags(last), SICKBAY_NOT_READY_GRACE: '0s' }, { dir: leaderDir, port: leaderPort })).p;
  await sleep(3000);
  const handed = pick(1)[0]!;
  standby.p.kill('SIGTERM');
  const stoppedAt = performance.now();
  await makeNotReady([handed]);
  await quarantinedWithin(handed, 120_000);
  const softMs = pods.get(handed)!.quarantined! - stoppedAt;
  await standby.p.exited;
  console.log(`fail-over (lease 15 s, renew deadline 10 s, retry 2 s): leader SIGKILLed -> a pod NotReady at that moment quarantined by the other replica in ${hardMs.toFixed(0)} ms; leader stopped cleanly (SIGTERM) -> ${softMs.toFixed(0)} ms`);
  stopPods();
  stopSlices();

  // The heap with every pod cached, against the empty cluster's.
  await sleep(3000);
  const fullHeap = await heapOf(leader);
  const podCount = pods.size;
  const rows = [...fullHeap.byName].map(([name, f]) => {
    const e = emptyHeap.byName.get(name) ?? { count: 0, bytes: 0 };
    return { name, count: f.count - e.count, bytes: f.bytes - e.bytes };
  }).sort((a, b) => b.bytes - a.bytes);
  console.log(`\nV8 heap after a full GC${named(last)}: ${(emptyHeap.used / MiB).toFixed(1)} MiB with no pods (resident ${emptyRss.toFixed(0)} MiB), ${(fullHeap.used / MiB).toFixed(1)} MiB with ${podCount} pods cached: ${((fullHeap.used - emptyHeap.used) / podCount).toFixed(0)} bytes a pod. What grew, by constructor (or kind):`);
  for (const r of rows.slice(0, 12)) console.log(`  ${r.name.slice(0, 40).padEnd(40)} ${String(r.count).padStart(9)} ${(r.bytes / MiB).toFixed(1).padStart(7)} MiB ${(r.bytes / podCount).toFixed(0).padStart(6)} B/pod`);
  console.log(`resident now ${rssMiB(leader.pid).toFixed(0)} MiB`);

  console.log(`\nsummary (${PODS} pods, ${FAIL} at once, ${ROUNDS} rounds of each grace, medians over rounds for the process figures):`);
  const list = (xs: number[], digits = 0) => xs.map((x) => x.toFixed(digits)).join(', ');
  for (const [key, r] of results) {
    console.log(`  ${key}: quarantined ${fmt(r.q)}; EndpointSlice ${fmt(r.e)}; replacement Ready ${fmt(r.r)}`);
    console.log(`    idle: CPU ${list(r.idleCpu.map((x) => x * 100), 1)}% of a core, resident ${list(r.idleRss)} MiB, heap used ${list(r.heap)} MiB; burst: CPU ${list(r.cpu, 2)} s, resident peak ${list(r.rss)} MiB, lag ${list(r.lag)} ms`);
  }
  for (const variant of VARIANTS) {
    const mine = starts.filter((s) => s.variant === variant);
    const field = (k: 'servingMs' | 'readyMs' | 'firstMs' | 'rss' | 'lag') => list(mine.map((s) => s[k]));
    console.log(`  start${named(variant)} (${mine.length} restarts): serving ${field('servingMs')} ms; /readyz ${field('readyMs')} ms; first quarantine ${field('firstMs')} ms; listing lag ${field('lag')} ms; resident after listing ${field('rss')} MiB`);
  }
  leader.kill('SIGTERM');
  await leader.exited;
} finally {
  await t.stop();
  rmSync(leaderDir, { recursive: true, force: true });
  rmSync(snapshots, { recursive: true, force: true });
}
// Watches and keep-alive agents of the client library would hold the process open.
process.exit(0);
