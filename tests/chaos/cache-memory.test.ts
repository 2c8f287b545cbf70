// A replica's memory with the caches of a real cluster: every replica caches every
// ReplicaSet and Deployment of the cluster (the webhook reads them on the admission path),
// so their templates, ten ReplicaSets per Deployment by default, were most of its memory,
// and a user could OOM every replica at once with `replicas: 0` Deployments of a megabyte.
// Here: 2,000 Deployments with 10 ReplicaSets each of a 100 KB template, 300 hostile
// Deployments of 1 MB, then the hostile admission load of the 2 MiB pods on top.
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe } from 'node:test';
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import { waitFor } from '../../src/util/wait.js';
import { scenario, secs } from '../support/chaos.js';
import { createNamespace, startCluster, type TestCluster } from '../support/cluster.js';
import { rssOf, watchHealth } from '../support/health.js';
import { request } from '../support/https.js';
import { type SickbayProcess, spawnSickbay } from '../support/sickbay.js';

/** The chart's memory limit of `sickbay serve`. */
const LIMIT = 512 * 2 ** 20;

describe('a replica with the caches of a real cluster', { timeout: 1_200_000 }, () => {
  let t: TestCluster;
  let proc: SickbayProcess | undefined;

  before(async () => {
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
    load: '2,000 Deployments × 10 ReplicaSets with 100 KB templates, 300 hostile Deployments of 1 MB (replicas 0, in a namespace that never opted in); then rounds of 8 concurrent 2 MiB pods of 10,000 containers for 15 s',
    fault: 'the caches every replica keeps of a large cluster, and hostile objects meant to fill them (a review found 100 Deployments of 800 KB doubled the resident memory)',
    outcome: "resident memory under the chart's 512 Mi limit; /healthz p99 under 100 ms; every admission 200 or 429",
  }, async (fig) => {
    const started = Date.now();
    await createNamespace(t.core, 'fleet');
    await createNamespace(t.core, 'hostile');
    // The fleet: Deployments paused at 0 replicas (their own controller adds nothing), each
    // with the ten ReplicaSets of its revision history.
    await each(2000, 8, (i) =>
      t.apps.createNamespacedDeployment({ namespace: 'fleet', body: { metadata: { name: `svc-${i}` }, spec: { replicas: 0, paused: true, revisionHistoryLimit: 20, selector: { matchLabels: { app: `svc-${i}` } }, template: template(`svc-${i}`, 100) } } }),
    );
    const rsTemplate = (i: number) => template(`svc-${Math.floor(i / 10)}`, 100_000);
    await each(20_000, 8, (i) =>
      t.apps.createNamespacedReplicaSet({
        namespace: 'fleet',
        body: { metadata: { name: `svc-${Math.floor(i / 10)}-r${i % 10}`, labels: { app: `svc-${Math.floor(i / 10)}`, 'pod-template-hash': `r${i % 10}` } }, spec: { replicas: 0, selector: { matchLabels: { app: `svc-${Math.floor(i / 10)}`, 'pod-template-hash': `r${i % 10}` } }, template: { ...rsTemplate(i), metadata: { labels: { app: `svc-${Math.floor(i / 10)}`, 'pod-template-hash': `r${i % 10}` } } } } },
      }),
    );
    await each(300, 4, (i) =>
      t.apps.createNamespacedDeployment({ namespace: 'hostile', body: { metadata: { name: `big-${i}` }, spec: { replicas: 0, selector: { matchLabels: { app: `big-${i}` } }, template: template(`big-${i}`, 1_000_000) } } }),
    );
    fig('objects made', `22,300 in ${secs(Date.now() - started)}`);

    proc = await spawnSickbay(t, 'fleet', { SICKBAY_CONTROLLERS: 'true', SICKBAY_LEADER_ELECTION: 'false', SICKBAY_LOG_LEVEL: 'warn' });
    const p = proc;
    const syncStarted = Date.now();
    await waitFor('sickbay ready with its caches synced', async () => (await request(p.port, p.caPem, '/readyz', { method: 'GET' }).catch(() => undefined))?.status === 200, { timeoutMs: 300_000, intervalMs: 500 });
    fig('caches synced after', secs(Date.now() - syncStarted));
    const idle = rssOf(p.pid);
    fig('resident with the caches', `${(idle / 2 ** 20).toFixed(0)} MiB`);

    // The hostile admission load on top.
    const pad = 'x'.repeat(150);
    const containers = Array.from({ length: 10_000 }, (_, i) => ({ name: `c${i}`, image: 'example.com/app:1', command: ['/app', `--${pad}`] }));
    const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', operation: 'CREATE', userInfo: { username: 'x' }, object: { metadata: { name: 'wide' }, spec: { containers } } } });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 8 });
    const statuses = new Map<number, number>();
    const health = watchHealth(p, 20);
    const loadStarted = Date.now();
    while (Date.now() - loadStarted < 15_000) {
      const replies = await Promise.all(Array.from({ length: 8 }, () => post(p.port, p.caPem, body, agent).catch(() => -1)));
      for (const r of replies) statuses.set(r, (statuses.get(r) ?? 0) + 1);
    }
    const { p99, rssMax, failures } = await health.stop(fig);
    agent.destroy();
    fig('answers', [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(', '));
    assert.ok([...statuses.keys()].every((s) => s === 200 || s === 429), 'every admission 200 or 429');
    assert.deepEqual(failures, []);
    assert.ok(rssMax < LIMIT, `resident ${(rssMax / 2 ** 20).toFixed(0)} MiB, over the chart's limit`);
    assert.ok(p99 < 100, `/healthz p99 ${p99.toFixed(1)} ms`);
  }, { timeout: 1_100_000 });
});

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
