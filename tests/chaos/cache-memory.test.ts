// A replica's memory with the caches of a real cluster: every replica caches every
// ReplicaSet and Deployment of the cluster (the webhook reads them on the admission path),
// so their templates, ten ReplicaSets per Deployment by default, were most of its memory,
// and a user could OOM every replica at once with `replicas: 0` Deployments of a megabyte.
//
// The scale: the issue asks for 2,000 Deployments × 10 ReplicaSets of 100 KB (2 GB of
// objects). Writing them into this machine's etcd took most of 400 s and then timed out,
// past the fault suite's budget; the row runs a tenth of the fleet (2,000 ReplicaSets of
// 100 KB, 200 MB) and all 300 hostile Deployments of 1 MB (their controller adds a
// ReplicaSet of 1 MB each: 600 MB), and reports what the full fleet would cost from what
// the cache keeps of each ReplicaSet.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { after, before, describe } from 'node:test';
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import { ensureDist } from '../../dev/build.js';
import { replicaSetForCache } from '../../src/kube/cluster-cache.js';
import { waitFor } from '../../src/util/wait.js';
import { scenario, secs } from '../support/chaos.js';
import { createNamespace, startCluster, type TestCluster } from '../support/cluster.js';
import { rssOf, watchHealth } from '../support/health.js';
import { request } from '../support/https.js';
import { type SickbayProcess, spawnSickbay } from '../support/sickbay.js';
import { template as helmTemplate } from '../support/helm.js';


/** The chart's memory limit of `sickbay serve`. */
const LIMIT = 512 * 2 ** 20;

describe('a replica with the caches of a real cluster', { timeout: 1_200_000 }, () => {
  let t: TestCluster;
  let proc: SickbayProcess | undefined;

  /** What the chart gives `sickbay serve` for its 512 Mi limit (V8's heap bounded below it). */
  let nodeOptions = '';

  before(async () => {
    // The compiled process, as the image runs it (tsx's compiler is ~100 MB of its own).
    await ensureDist();
    const rendered = await helmTemplate();
    nodeOptions = /name: NODE_OPTIONS, value: "([^"]*)" \}\n\s+- \{ name: SICKBAY_NAMESPACE/.exec(rendered)?.[1] ?? '';
    assert.match(nodeOptions, /^--max-old-space-size=\d+$/, "the chart's NODE_OPTIONS for sickbay serve");
    t = await startCluster({ nodes: 1 });
  });
  after(async () => {
    proc?.kill('SIGKILL');
    await proc?.exited;
    await t?.stop();
  });

  /** A pod template of about `bytes` (an env value: what a ConfigMap inlined into a template weighs). */
  const template = (app: string, bytes: number): V1PodTemplateSpec => ({
    metadata: { labels: { app } },
    spec: { containers: [{ name: 'app', image: 'example.com/app:1', command: ['/app'], env: [{ name: 'BLOB', value: 'x'.repeat(bytes) }] }] },
  });

  /** Runs `fn` for 0..n-1, `parallel` at a time. */
  const each = async (n: number, parallel: number, fn: (i: number) => Promise<unknown>) => {
    let next = 0;
    await Promise.all(Array.from({ length: parallel }, async () => {
      for (let i = next++; i < n; i = next++) await fn(i);
    }));
  };

  scenario('a replica with realistic caches under the 2 MiB-pod admission load', {
    load: '200 Deployments × 10 ReplicaSets with 100 KB templates (a tenth of the fleet the issue names), 300 hostile Deployments of 1 MB with their ReplicaSets (replicas 0, in a namespace that never opted in); then rounds of 8 concurrent 2 MiB pods of 10,000 containers for 15 s',
    fault: 'the caches every replica keeps of a large cluster, and hostile objects meant to fill them (a review found 100 Deployments of 800 KB doubled the resident memory)',
    outcome: "resident memory under the chart's 512 Mi limit from start through the load; /healthz p99 under 100 ms; every admission 200 or 429",
  }, async (fig) => {
    const started = Date.now();
    await createNamespace(t.core, 'fleet');
    await createNamespace(t.core, 'hostile');
    const FLEET = 200;
    // The fleet: Deployments paused at 0 replicas (their own controller adds nothing), each
    // with the ten ReplicaSets of its revision history.
    await each(FLEET, 8, (i) =>
      t.apps.createNamespacedDeployment({ namespace: 'fleet', body: { metadata: { name: `svc-${i}` }, spec: { replicas: 0, paused: true, revisionHistoryLimit: 20, selector: { matchLabels: { app: `svc-${i}` } }, template: template(`svc-${i}`, 100) } } }),
    );
    await each(FLEET * 10, 8, (i) => {
      const labels = { app: `svc-${Math.floor(i / 10)}`, 'pod-template-hash': `r${i % 10}` };
      return t.apps.createNamespacedReplicaSet({
        namespace: 'fleet',
        body: { metadata: { name: `svc-${Math.floor(i / 10)}-r${i % 10}`, labels }, spec: { replicas: 0, selector: { matchLabels: labels }, template: { ...template(labels.app, 100_000), metadata: { labels } } } },
      });
    });
    await each(300, 4, (i) =>
      t.apps.createNamespacedDeployment({ namespace: 'hostile', body: { metadata: { name: `big-${i}` }, spec: { replicas: 0, selector: { matchLabels: { app: `big-${i}` } }, template: template(`big-${i}`, 1_000_000) } } }),
    );
    await waitFor('a ReplicaSet of each hostile Deployment', async () => {
      // One item asked for; the rest counted by the API server (a page of them would be 300 MB).
      const page = await t.apps.listNamespacedReplicaSet({ namespace: 'hostile', limit: 1 });
      return page.items.length + (page.metadata?.remainingItemCount ?? 0) >= 300 ? true : undefined;
    }, { timeoutMs: 180_000, intervalMs: 2_000 });
    fig('objects made', `${(FLEET * 11 + 600).toLocaleString('en')} in ${secs(Date.now() - started)}`);
    const one = await t.apps.readNamespacedReplicaSet({ name: 'svc-0-r0', namespace: 'fleet' });
    const kept = JSON.stringify(replicaSetForCache(one)).length;
    fig('a ReplicaSet of 100 KB kept as', `${kept} bytes (2,000 × 10 of them: ${((kept * 20_000) / 2 ** 20).toFixed(1)} MiB)`);

    proc = await spawnSickbay(t, 'fleet', { SICKBAY_CONTROLLERS: 'true', SICKBAY_LEADER_ELECTION: 'false', SICKBAY_LOG_LEVEL: 'warn', SICKBAY_USE_DIST: '1', NODE_OPTIONS: nodeOptions });
    fig('sickbay', `compiled, NODE_OPTIONS ${nodeOptions} (the chart's)`);
    const p = proc;
    // Resident memory from the start: a list page of megabyte objects is parsed whole.
    let rssMax = 0;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssOf(p.pid))), 50);
    try {
      const syncStarted = Date.now();
      let exited = false;
      void p.exited.then(() => (exited = true));
      await waitFor(
        'sickbay ready with its caches synced',
        async () => {
          // A replica that died of its caches (V8's heap limit, the chart's) fails the row at once.
          if (exited) {
            const lines = p.output().split('\n').filter((l) => l.trim());
            const why = lines.findLast((l) => /out of memory|FATAL|Error/i.test(l)) ?? lines.at(-1) ?? '';
            // One line: waitFor's stopOn keeps the first.
            throw new Error(`sickbay exited while listing (resident max ${(rssMax / 2 ** 20).toFixed(0)} MiB): ${why.trim().slice(0, 300)}`);
          }
          return (await request(p.port, p.caPem, '/readyz', { method: 'GET' }).catch(() => undefined))?.status === 200;
        },
        { timeoutMs: 300_000, intervalMs: 500, stopOn: () => exited },
      );
      fig('caches synced after', secs(Date.now() - syncStarted));
      fig('resident max while listing', `${(rssMax / 2 ** 20).toFixed(0)} MiB`);
      fig('resident with the caches', `${(rssOf(p.pid) / 2 ** 20).toFixed(0)} MiB`);
    } finally {
      clearInterval(sampler);
    }

    // The load comes once the cluster has settled: while kube-controller-manager is still
    // writing the 300 hostile Deployments' and ReplicaSets' status, every write is a watch
    // event of a megabyte for sickbay to read (what watching them costs, measured here).
    const settleStarted = Date.now();
    let idleShare = 1;
    while (Date.now() - settleStarted < 90_000) {
      const c0 = cpuSeconds(p.pid);
      await new Promise((r) => setTimeout(r, 3_000));
      idleShare = (cpuSeconds(p.pid) - c0) / 3;
      if (idleShare < 0.1) break;
    }
    fig('settled after', `${secs(Date.now() - settleStarted)} (sickbay at ${(idleShare * 100).toFixed(0)}% of a core)`);

    // The hostile admission load on top.
    const pad = 'x'.repeat(150);
    const containers = Array.from({ length: 10_000 }, (_, i) => ({ name: `c${i}`, image: 'example.com/app:1', command: ['/app', `--${pad}`] }));
    const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', operation: 'CREATE', userInfo: { username: 'x' }, object: { metadata: { name: 'wide' }, spec: { containers } } } });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 8 });
    const statuses = new Map<number, number>();
    // Where a slow probe's time went: sickbay's garbage collection and CPU over the load,
    // and the machine's (2 shared cores; the control plane holds the same objects).
    const before = { gc: await gcSeconds(p), cpu: cpuSeconds(p.pid), machine: machineBusySeconds() };
    const health = watchHealth(p, 20);
    const loadStarted = Date.now();
    while (Date.now() - loadStarted < 15_000) {
      const replies = await Promise.all(Array.from({ length: 8 }, () => post(p.port, p.caPem, body, agent).catch(() => -1)));
      for (const r of replies) statuses.set(r, (statuses.get(r) ?? 0) + 1);
    }
    const { p99, rssMax: loadRssMax, failures } = await health.stop(fig);
    const gc = await gcSeconds(p);
    const wall = (Date.now() - loadStarted) / 1000;
    fig('over the load', `garbage collection ${(gc.major - before.gc.major).toFixed(2)} s major, ${(gc.minor - before.gc.minor).toFixed(2)} s minor; sickbay's CPU ${(cpuSeconds(p.pid) - before.cpu).toFixed(1)} s, the machine's ${(machineBusySeconds() - before.machine).toFixed(1)} s, of ${wall.toFixed(1)} s on 2 cores`);
    agent.destroy();
    fig('answers', [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(', '));
    assert.ok([...statuses.keys()].every((s) => s === 200 || s === 429), 'every admission 200 or 429');
    assert.deepEqual(failures, []);
    assert.ok(rssMax < LIMIT, `resident ${(rssMax / 2 ** 20).toFixed(0)} MiB while listing, over the chart's limit`);
    assert.ok(loadRssMax < LIMIT, `resident ${(loadRssMax / 2 ** 20).toFixed(0)} MiB under load, over the chart's limit`);
    assert.ok(p99 < 100, `/healthz p99 ${p99.toFixed(1)} ms`);
  }, { timeout: 1_100_000 });
});

/** sickbay's own count of its garbage collection (prom-client's nodejs_gc_duration_seconds), major and the rest, in seconds. */
async function gcSeconds(p: SickbayProcess): Promise<{ major: number; minor: number }> {
  const text = (await request(p.port, p.caPem, '/metrics', { method: 'GET' })).body;
  let major = 0;
  let minor = 0;
  for (const m of text.matchAll(/^nodejs_gc_duration_seconds_sum\{kind="(\w+)"\} (\S+)$/gm)) {
    if (m[1] === 'major') major += Number(m[2]);
    else minor += Number(m[2]);
  }
  return { major, minor };
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Seconds the machine's cores spent busy (not idle or waiting), from /proc/stat. */
function machineBusySeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  return (total - cpu[3]! - cpu[4]!) / 100;
}

function post(port: number, ca: string, body: string, agent: https.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca, servername: 'localhost', agent, headers: { 'content-type': 'application/json' }, timeout: 15_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 15 s')));
    req.on('error', reject);
    req.end(body);
  });
}
