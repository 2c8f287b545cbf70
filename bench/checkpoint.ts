// What a checkpoint costs, on the real node (containerd 2.x, CRIU 4.x, a real kubelet): the
// `shop` JVM workload (hack/workload, OpenJDK 17, uid 1000, as the playground runs it) is
// checkpointed through the kubelet's API, as the node agent asks for it, round after round.
// Each round measures the call's duration, the archive's size, and the app's pause as a
// client sees it: the slowest answer to GET /ready, asked back to back, during the
// checkpoint, against the same measure over a window of the same length without one
// (alternated in one run: the machine is shared and noisy).
//   sudo npm run bench:checkpoint      (BENCH_ROUNDS (5) changes the run)
import http from 'node:http';
import https from 'node:https';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { CoreV1Api } from '@kubernetes/client-node';
import { LocalControlPlane } from '../dev/control-plane.js';
import { IMAGES, WORKLOAD_COMMAND } from '../dev/images.js';
import { REAL_NODE } from '../dev/real-node.js';
import { sleep, waitFor } from '../src/util/wait.js';
import { median } from './support.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);

/** GET /ready back to back until `until` resolves; the slowest answer (ms) and how many there were. */
async function probe(url: string, until: Promise<unknown>): Promise<{ worstMs: number; answers: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let done = false;
  void until.finally(() => (done = true));
  let worstMs = 0;
  let answers = 0;
  while (!done) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      const req = http.get(url, { agent, timeout: 30_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', () => resolve());
      req.on('timeout', () => req.destroy());
    });
    worstMs = Math.max(worstMs, performance.now() - t0);
    answers++;
  }
  agent.destroy();
  return { worstMs, answers };
}

const cp = await LocalControlPlane.start({ realNode: true, nodes: 1 });
try {
  const core = cp.kubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespacedPod({
    namespace: 'default',
    body: {
      metadata: { name: 'shop' },
      spec: {
        nodeSelector: { [REAL_NODE.label]: 'real' },
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'app',
            image: IMAGES.workload,
            imagePullPolicy: 'Never',
            command: WORKLOAD_COMMAND,
            env: [{ name: 'APP_NAME', value: 'shop' }],
            ports: [{ containerPort: 8080 }],
            securityContext: { runAsUser: 1000, runAsGroup: 1000, allowPrivilegeEscalation: false },
            readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 1 },
          },
        ],
      },
    },
  });
  const ip = await waitFor(
    'the shop JVM ready',
    async () => {
      const p = await core.readNamespacedPod({ name: 'shop', namespace: 'default' });
      return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p.status.podIP : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  const url = `http://${ip}:8080/ready`;
  await probe(url, sleep(3_000)); // warm: the JIT, the connection
  const tls = { ca: readFileSync(cp.file('ca.crt')), cert: readFileSync(cp.file('admin.crt')), key: readFileSync(cp.file('admin.key')) };
  const checkpoint = () =>
    new Promise<string>((resolve, reject) => {
      const req = https.request(`${cp.realNode!.kubeletApi}/checkpoint/default/shop/app?timeout=120`, { method: 'POST', ...tls }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          if (res.statusCode === 200) return resolve((JSON.parse(body) as { items: string[] }).items[0]!);
          // CRIU's own account of a failure, before the cluster's folder goes.
          const log = /path= (\S+criu-dump\.log)/.exec(body)?.[1];
          const errors = log ? readFileSync(log, 'utf8').split('\n').filter((l) => /Error|Warn/.test(l)).slice(0, 15).join('\n') : '';
          reject(new Error(`HTTP ${res.statusCode}: ${body}${errors ? `\nCRIU's errors:\n${errors}` : ''}`));
        });
      });
      req.on('error', reject);
      req.end();
    });
  const rows: Array<{ ms: number; mib: number; pauseMs: number; baselineMs: number }> = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const call = checkpoint();
    const during = await probe(url, call.catch(() => undefined));
    const archive = await call;
    const ms = performance.now() - t0;
    const mib = statSync(archive).size / 2 ** 20;
    rmSync(archive, { force: true });
    await sleep(1_000);
    const without = await probe(url, sleep(ms));
    rows.push({ ms, mib, pauseMs: during.worstMs, baselineMs: without.worstMs });
    console.log(`round ${i + 1}: checkpoint ${ms.toFixed(0)} ms, archive ${mib.toFixed(1)} MiB; slowest /ready during it ${during.worstMs.toFixed(0)} ms (${during.answers} answers), without ${without.worstMs.toFixed(0)} ms (${without.answers})`);
    await sleep(1_000);
  }
  const m = (f: (r: (typeof rows)[number]) => number) => median(rows.map(f));
  const spread = (f: (r: (typeof rows)[number]) => number) => `${Math.min(...rows.map(f)).toFixed(0)}-${Math.max(...rows.map(f)).toFixed(0)}`;
  console.log(`\n| rounds | checkpoint (median, range) | archive | slowest /ready during it | without (same window) |`);
  console.log(`|---|---|---|---|---|`);
  console.log(`| ${rounds} | ${m((r) => r.ms).toFixed(0)} ms (${spread((r) => r.ms)}) | ${m((r) => r.mib).toFixed(1)} MiB | ${m((r) => r.pauseMs).toFixed(0)} ms (${spread((r) => r.pauseMs)}) | ${m((r) => r.baselineMs).toFixed(0)} ms (${spread((r) => r.baselineMs)}) |`);
} finally {
  await cp.stop();
}
