// What sickbay's webhooks cost a pod creation. A Deployment in an opted-in namespace is
// scaled from 0 to BENCH_PODS (1000) pods, with sickbay's two webhooks registered, with the
// same two configurations pointing at a no-op server (bench/mutate-server.ts noop: same
// certificate, same match rules, "allowed" with no patch: what any webhook costs), and
// without webhooks, alternated round by round in one run (BENCH_ROUNDS, 3 of each): pods
// created per second (from the scale request to the last pod seen on a watch), and the
// API server's own measurement of each webhook call
// (apiserver_admission_webhook_admission_duration_seconds, scraped before and after the
// rounds with webhooks). sickbay runs as its own process, the compiled dist/ when
// SICKBAY_USE_DIST=1, controllers on (as installed), diagnostics off.
//   npm run bench:creation
import { execSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import type { V1Pod } from '@kubernetes/client-node';
import { freePorts } from '../dev/control-plane.js';
import { registerWebhooks, unregisterWebhooks } from '../dev/local-install.js';
import { mergePatch } from '../src/kube/api.js';
import { waitFor } from '../src/util/wait.js';
import { createNamespace, startCluster } from '../tests/support/cluster.js';
import { request } from '../tests/support/https.js';
import { SICKBAY_NS, spawnSickbay, waitForInjection } from '../tests/support/sickbay.js';
import { buckets, cpuSeconds, keepWatching, median, quantile } from './support.js';

const PODS = Number(process.env.BENCH_PODS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const NODES = Number(process.env.BENCH_NODES ?? 20);
const ns = 'bench';
const t = await startCluster({ nodes: NODES, log: () => undefined });
try {
  const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-bench-creation-'));
  const [port] = (await freePorts(1)) as [number];
  const sickbay = await spawnSickbay(t, 'bench-creation', { SICKBAY_CONTROLLERS: process.env.BENCH_CONTROLLERS ?? 'true', SICKBAY_DIAGNOSTICS: 'false', SICKBAY_NEVER_READY_AFTER: '1h', SICKBAY_LOG_LEVEL: 'warn' }, { dir, port });
  let caPem = sickbay.caPem;
  if (process.env.BENCH_KEY === 'ecdsa') {
    // An ECDSA P-256 serving key (as cert-manager issues in the chart) instead of RSA 2048.
    const sh = (cmd: string) => execSync(cmd, { cwd: dir, shell: '/bin/bash', stdio: 'pipe' });
    sh('openssl ecparam -name prime256v1 -genkey -noout -out ec-ca.key && openssl req -x509 -new -key ec-ca.key -subj /CN=bench-ca -days 1 -out ec-ca.crt');
    sh('openssl ecparam -name prime256v1 -genkey -noout -out ec.key && openssl req -new -key ec.key -subj /CN=127.0.0.1 -out ec.csr');
    sh(`openssl x509 -req -in ec.csr -CA ec-ca.crt -CAkey ec-ca.key -CAcreateserial -days 1 -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth') -out ec.crt`);
    sh('cp ec.key tls.key && cp ec.crt tls.crt');
    caPem = readFileSync(path.join(dir, 'ec-ca.crt'), 'utf8');
    await waitFor('the ECDSA certificate served', async () => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: caPem, servername: undefined });
      return new Promise<boolean>((resolve) => {
        socket.once('secureConnect', () => (socket.end(), resolve(true)));
        socket.once('error', () => resolve(false));
      });
    }, { timeoutMs: 30_000, intervalMs: 1000 });
    console.log('serving an ECDSA P-256 certificate');
  }
  await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
  const url = `https://127.0.0.1:${sickbay.port}`;
  // The no-op webhook, in its own process, with sickbay's certificate.
  const noop = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'mutate-server.ts'), 'noop', path.join(dir, 'tls.crt'), path.join(dir, 'tls.key')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const noopPort = await new Promise<number>((resolve) => {
    let out = '';
    noop.stdout.on('data', (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
  });
  const noopUrl = `https://127.0.0.1:${noopPort}`;
  const apiMetrics = async () => {
    const server = t.kc.getCurrentCluster()!.server;
    const opts: Record<string, any> = {};
    await t.kc.applyToHTTPSOptions(opts);
    const u = new URL('/metrics', server);
    const https = await import('node:https');
    return new Promise<string>((resolve, reject) => {
      https.get({ hostname: u.hostname, port: u.port, path: u.pathname, ca: opts.ca, cert: opts.cert, key: opts.key, headers: opts.headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
  };

  /** Scales a fresh Deployment from 0 to PODS; seconds from the scale request to the last pod seen. */
  async function round(name: string, created: () => void): Promise<number> {
    await t.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name } },
            spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'app', image: 'registry.example/app:1', command: ['/app/server', '--port=8080'], ports: [{ containerPort: 8080 }] }] },
          },
        },
      },
    });
    const seen = new Set<string>();
    let last = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    // The API server closes a watch that falls behind a burst (its buffer is full): it
    // goes on from the last resourceVersion seen, so no pod is missed.
    const stopWatch = await keepWatching<V1Pod>(t.kc, `/api/v1/namespaces/${ns}/pods`, undefined, (type, pod) => {
      if (type !== 'ADDED' || seen.has(pod.metadata!.uid!)) return;
      seen.add(pod.metadata!.uid!);
      last = performance.now();
      if (seen.size >= PODS) done();
    }, `app=${name}`);
    await sleep(500);
    const start = performance.now();
    await t.apps.patchNamespacedDeployment({ name, namespace: ns, body: { spec: { replicas: PODS } } }, mergePatch);
    const progress = setInterval(() => console.log(`  ${name}: ${seen.size} of ${PODS} pods after ${((performance.now() - start) / 1000).toFixed(0)} s`), 30_000);
    await Promise.race([all, sleep(600_000).then(() => Promise.reject(new Error(`${seen.size} of ${PODS} pods after 10 minutes`)))]).finally(() => clearInterval(progress));
    const seconds = (last - start) / 1000;
    created();
    stopWatch();
    // Gone before the next round, so every round starts from the same cluster.
    await t.apps.deleteNamespacedDeployment({ name, namespace: ns, propagationPolicy: 'Foreground' });
    await waitFor('the round\'s pods gone', async () => (await t.core.listNamespacedPod({ namespace: ns, labelSelector: `app=${name}`, limit: 1 })).items.length === 0, { timeoutMs: 600_000, intervalMs: 2000 });
    return seconds;
  }

  // CPU seconds each process used during a round (/proc/<pid>/stat utime + stime): where the time goes.
  const procs = () => ({ sickbay: sickbay.pid, ...Object.fromEntries((['kube-apiserver', 'etcd', 'kube-controller-manager', 'kube-scheduler', 'kwok'] as const).map((n) => [n, t.cp.pidOf(n)])) }) as Record<string, number | undefined>;
  const cpu = () => Object.fromEntries(Object.entries(procs()).map(([n, pid]) => [n, pid ? cpuSeconds(pid) : NaN]));
  type Mode = 'with' | 'noop' | 'without';
  const cpuSpent: Record<Mode, Record<string, number>[]> = { with: [], noop: [], without: [] };
  const results: Record<Mode, number[]> = { with: [], noop: [], without: [] };
  let beforeNoop = '';
  let afterNoop = '';
  let before = '';
  let after = '';
  const admittedBy = (text: string) => text.split('\n').filter((l) => l.startsWith('sickbay_admission_requests_total')).join('; ');
  console.log(`scale 0 -> ${PODS} pods on ${NODES} kwok nodes, ${ROUNDS} rounds with sickbay's webhooks, with no-op webhooks and without, alternated`);
  const orders: Mode[][] = [['with', 'noop', 'without'], ['noop', 'without', 'with'], ['without', 'with', 'noop']];
  for (let i = 1; i <= ROUNDS; i++) {
    for (const mode of orders[(i - 1) % orders.length]!) {
      if (mode === 'with') {
        await registerWebhooks(t.kc, { url, caPem, ownNamespace: SICKBAY_NS });
        await waitForInjection(t.core, ns);
      } else if (mode === 'noop') {
        await registerWebhooks(t.kc, { url: noopUrl, caPem, ownNamespace: SICKBAY_NS });
        await sleep(2000); // the API server's webhook configuration cache
      } else {
        await unregisterWebhooks(t.kc);
        await sleep(2000); // the API server's webhook configuration cache
      }
      const m0 = await apiMetrics();
      const s0 = mode === 'with' ? (await request(sickbay.port, caPem, '/metrics', { method: 'GET' })).body : '';
      const c0 = cpu();
      const seconds = await round(`r${i}-${mode}`, () => {
        const c1 = cpu();
        cpuSpent[mode].push(Object.fromEntries(Object.keys(c1).map((k) => [k, c1[k]! - c0[k]!])));
      });
      const m1 = await apiMetrics();
      if (mode === 'with') {
        const s1 = (await request(sickbay.port, caPem, '/metrics', { method: 'GET' })).body;
        const count = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
        const mutate = (l: string) => l.includes('webhook="mutate"');
        const h50 = quantile(buckets(s1, 'sickbay_admission_duration_seconds', mutate), buckets(s0, 'sickbay_admission_duration_seconds', mutate), 0.5);
        const h99 = quantile(buckets(s1, 'sickbay_admission_duration_seconds', mutate), buckets(s0, 'sickbay_admission_duration_seconds', mutate), 0.99);
        console.log(`  sickbay: ${count(s1, /^sickbay_tls_handshakes_total\{resumed="false"\}/) - count(s0, /^sickbay_tls_handshakes_total\{resumed="false"\}/)} full TLS handshakes, ${count(s1, /^sickbay_tls_handshakes_total\{resumed="true"\}/) - count(s0, /^sickbay_tls_handshakes_total\{resumed="true"\}/)} resumed; its own /mutate time p50 ${(h50.value * 1000).toFixed(2)} ms, p99 ${(h99.value * 1000).toFixed(2)} ms`);
      }
      if (mode === 'with') {
        // Sum the deltas of every round with webhooks.
        before += `${m0}\n`;
        after += `${m1}\n`;
      } else if (mode === 'noop') {
        beforeNoop += `${m0}\n`;
        afterNoop += `${m1}\n`;
      }
      results[mode].push(seconds);
      console.log(`round ${i} ${mode.padEnd(7)} webhooks: ${PODS} pods in ${seconds.toFixed(2)} s = ${(PODS / seconds).toFixed(0)} pods/s`);
    }
  }
  const w = median(results.with);
  const wo = median(results.without);
  const nw = median(results.noop);
  for (const mode of ['with', 'noop', 'without'] as const) {
    const names = Object.keys(cpuSpent[mode][0] ?? {});
    console.log(`CPU seconds per round ${mode} webhooks (median): ${names.map((n) => `${n} ${median(cpuSpent[mode].map((c) => c[n]!)).toFixed(2)}`).join(', ')}`);
  }
  console.log(`\nmedian pods/s with sickbay's webhooks ${(PODS / w).toFixed(0)}, with no-op webhooks ${(PODS / nw).toFixed(0)}, without ${(PODS / wo).toFixed(0)}`);
  console.log(`ratio sickbay / no-op ${(nw / w).toFixed(3)} (issue 32's target >= 0.9), no-op / none ${(wo / nw).toFixed(3)}, sickbay / none ${(wo / w).toFixed(3)}`);
  const pairs = results.with.map((s, k) => (results.noop[k]! / s).toFixed(3));
  console.log(`sickbay / no-op, round by round: ${pairs.join(', ')}`);
  // The API server's histogram, per webhook, over the rounds with webhooks (deltas summed).
  const metric = 'apiserver_admission_webhook_admission_duration_seconds';
  const seenLabels = new Set(after.split('\n').filter((l) => l.startsWith(`${metric}_count{`) && l.includes('sickbay')).map((l) => l.slice(0, l.lastIndexOf(' '))));
  console.log(`series: ${[...seenLabels].join(', ')}`);
  for (const [who, aft, bef] of [['sickbay', after, before], ['no-op', afterNoop, beforeNoop]] as const) {
    for (const [webhook, type] of [['mutate.sickbay.io', 'admit'], ['validate.sickbay.io', 'validating']] as const) {
      const sel = (labels: string) => labels.includes(`type="${type}"`) && /name="[^"]*sickbay[^"]*"/.test(labels) && labels.includes('operation="CREATE"');
      // Every scrape's cumulative counts summed: the sum of the afters minus the sum of the befores is the rounds' calls.
      const a = buckets(aft, metric, sel);
      const b = buckets(bef, metric, sel);
      const p50 = quantile(a, b, 0.5);
      const p99 = quantile(a, b, 0.99);
      console.log(`API server's measurement of ${webhook} (${type}) served by ${who}, CREATE: ${p50.count} calls; p50 ${(p50.value * 1000).toFixed(1)} ms (bucket ${p50.bucket}), p99 ${(p99.value * 1000).toFixed(1)} ms (bucket ${p99.bucket})`);
    }
  }
  const own = (await request(sickbay.port, caPem, '/metrics', { method: 'GET' })).body;
  console.log(`sickbay's own counters: ${admittedBy(own)}`);
  noop.kill('SIGKILL');
  sickbay.kill('SIGTERM');
  await sickbay.exited;
} finally {
  await t.stop();
}
// Watches and keep-alive agents of the client library would hold the process open.
process.exit(0);
