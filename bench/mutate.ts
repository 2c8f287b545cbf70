// Load POST /mutate over TLS with a realistic ~8 KB pod: sickbay's server against a bare
// node:https server calling the same handler, alternated in one run (the machine is
// shared and noisy: medians and ratios of side-by-side rounds, not absolute figures).
//   npm run bench:mutate            (BENCH_ROUNDS, BENCH_SECONDS to change the run)
// With BENCH_PIN=1 (and taskset, util-linux), the load generator runs on core 0 and the
// server on core 1, so each has a core of its own.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { writeCerts } from '../src/cli/certs.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-bench-'));
const certs = writeCerts({ outDir: dir, service: 'sickbay', namespace: 'sickbay-system', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays: 1 });

function realisticPod() {
  const env = Array.from({ length: 40 }, (_, i) => ({ name: `SETTING_${i}`, value: `value-${i}-${'x'.repeat(40)}` }));
  const container = (name: string) => ({
    name,
    image: `registry.example/shop/${name}:1.42.7`,
    command: ['/app/bin/server'],
    args: ['--port=8080', '--log-format=json', `--name=${name}`],
    env,
    ports: [{ containerPort: 8080, name: 'http' }],
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } },
    volumeMounts: [{ name: 'config', mountPath: '/etc/app' }],
  });
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'checkout-7d9f8c6b5-',
      namespace: 'shop',
      labels: { app: 'checkout', 'pod-template-hash': '7d9f8c6b5', team: 'payments', tier: 'web' },
      annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'checkout-7d9f8c6b5', uid: '1b4c1f1e-8f0e-4a43-9e43-0b5a9b1d2c3e', controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      containers: [container('checkout'), container('sidecar')],
      volumes: [{ name: 'config', configMap: { name: 'checkout' } }],
      serviceAccountName: 'checkout',
      tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
    },
  };
}

const body = JSON.stringify({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace: 'shop',
    operation: 'CREATE',
    userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
    object: realisticPod(),
  },
});

const pin = process.env.BENCH_PIN === '1';
if (pin) execFileSync('taskset', ['-a', '-cp', '0', String(process.pid)], { stdio: 'ignore' });

async function startServer(kind: 'sickbay' | 'bare') {
  const args = ['--import', 'tsx', path.join(import.meta.dirname, 'mutate-server.ts'), kind, certs.certFile, certs.keyFile];
  const child = pin ? spawn('taskset', ['-c', '1', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
  });
  return { port, stop: () => child.kill('SIGKILL') };
}

async function load(port: number, opts: { connections: number; overallRate?: number }) {
  const r = await autocannon({
    url: `https://127.0.0.1:${port}/mutate`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: opts.connections,
    overallRate: opts.overallRate,
    duration: seconds,
    tlsOptions: { ca: certs.caPem, servername: 'localhost' } as never,
  });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx, sent: r.requests.total };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results: Record<string, { rps: number[]; p50: number[]; p99: number[]; fixedP50: number[]; fixedP99: number[]; errors: number }> = {};
console.log(pin ? 'load generator on core 0, server on core 1' : 'load generator and server share the cores');
console.log(`POST /mutate, pod of ${Buffer.byteLength(JSON.stringify(realisticPod()))} bytes (AdmissionReview ${Buffer.byteLength(body)} bytes); ${rounds} rounds x ${seconds} s per server and mode`);
for (let round = 1; round <= rounds; round++) {
  for (const kind of ['sickbay', 'bare'] as const) {
    const s = await startServer(kind);
    await load(s.port, { connections: 10 }); // warm-up is the first round's cost; keep JIT fair
    const max = await load(s.port, { connections: 10 });
    const fixed = await load(s.port, { connections: 10, overallRate: 1000 });
    s.stop();
    const r = (results[kind] ??= { rps: [], p50: [], p99: [], fixedP50: [], fixedP99: [], errors: 0 });
    r.rps.push(max.rps);
    r.p50.push(max.p50);
    r.p99.push(max.p99);
    r.fixedP50.push(fixed.p50);
    r.fixedP99.push(fixed.p99);
    r.errors += max.errors + fixed.errors;
    console.log(`round ${round} ${kind.padEnd(7)} max: ${max.rps.toFixed(0)} req/s p50 ${max.p50} ms p99 ${max.p99} ms | at 1000 req/s: p50 ${fixed.p50} ms p99 ${fixed.p99} ms (${fixed.sent} sent)`);
  }
}
const sb = results.sickbay!;
const bare = results.bare!;
console.log('\nmedians over rounds:');
for (const [k, r] of Object.entries(results)) {
  console.log(`  ${k.padEnd(7)} ${median(r.rps).toFixed(0)} req/s, p50 ${median(r.p50)} ms, p99 ${median(r.p99)} ms; at 1000 req/s p50 ${median(r.fixedP50)} ms, p99 ${median(r.fixedP99)} ms; errors ${r.errors}`);
}
console.log(`  throughput ratio sickbay/bare: ${(median(sb.rps) / median(bare.rps)).toFixed(3)}`);
rmSync(dir, { recursive: true, force: true });
