// Admission under faults: sickbay killed while pods are being created (the webhook fails
// open, nothing is refused, and every pod that escaped injection is reported once it is
// back), and 10,000 generated AdmissionReviews thrown at its HTTPS server (never a crash,
// a hang or a 5xx). Both against a `sickbay serve` process on the real control plane.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { applyPatch } from 'rfc6902';
import { freePorts } from '../../dev/control-plane.js';
import { registerWebhooks, unregisterWebhooks } from '../../dev/local-install.js';
import { ANN_INJECTED } from '../../src/core/names.js';
import { waitFor } from '../../src/util/wait.js';
import { sample } from 'fast-check';
import { expand, type GeneratedReview, reviewArbitrary } from '../support/admission-arbitrary.js';
import { scenario, secs } from '../support/chaos.js';
import { watchHealth } from '../support/health.js';
import { createNamespace, eventsOf, startCluster, type TestCluster } from '../support/cluster.js';
import { request } from '../support/https.js';
import { SICKBAY_NS, type SickbayProcess, spawnSickbay } from '../support/sickbay.js';

const ns = 'burst';
/** sickbay's default SICKBAY_MAX_BODY_BYTES. */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

describe('admission under faults', { timeout: 900_000 }, () => {
  let t: TestCluster;
  const processes: SickbayProcess[] = [];
  const dirs: string[] = [];

  before(async () => {
    t = await startCluster({ nodes: 2 });
    await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
  });
  after(async () => {
    for (const p of processes) p.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    if (t) await unregisterWebhooks(t.kc);
    await t?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const ready = (p: SickbayProcess) =>
    waitFor('sickbay ready', async () => (await request(p.port, p.caPem, '/readyz', { method: 'GET' }).catch(() => undefined))?.status === 200, { timeoutMs: 60_000 });
  /** A sickbay process serving the webhooks only (no controllers), ready. */
  const webhookOnly = async (name: string) => {
    const proc = await spawnSickbay(t, name, { SICKBAY_CONTROLLERS: 'false', SICKBAY_LEADER_ELECTION: 'false', SICKBAY_LOG_LEVEL: 'error' });
    processes.push(proc);
    await ready(proc);
    let exited = false;
    void proc.exited.then(() => (exited = true));
    return { proc, crashed: () => exited };
  };

  const metric = async (p: SickbayProcess, name: string) => {
    const res = await request(p.port, p.caPem, '/metrics', { method: 'GET' });
    return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(res.body)?.[1] ?? NaN);
  };

  scenario('sickbay killed during a burst of 200 pod creations', {
    load: '200 pods created in an opted-in namespace, about 10 a second',
    fault: 'sickbay SIGKILLed after the 50th pod, started again at once on the same port',
    outcome: '0 pods refused; every pod that escaped injection reported (gauge, NotInjected Event)',
  }, async (fig) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-burst-'));
    dirs.push(dir);
    const [port] = (await freePorts(1)) as [number];
    const env = { SICKBAY_CONTROLLERS: 'true', SICKBAY_LEADER_ELECTION: 'false', SICKBAY_LOG_LEVEL: 'info' };
    const first = await spawnSickbay(t, 'burst-1', env, { dir, port });
    processes.push(first);
    await ready(first);
    await registerWebhooks(t.kc, { url: first.url, caPem: first.caPem, ownNamespace: SICKBAY_NS });
    await waitFor('the webhook in effect', async () => {
      const p = await t.core.createNamespacedPod({ namespace: ns, body: { metadata: { generateName: 'probe-' }, spec: { containers: [{ name: 'c', image: 'x', command: ['/c'] }] } } });
      await t.core.deleteNamespacedPod({ namespace: ns, name: p.metadata!.name!, gracePeriodSeconds: 0 });
      return p.metadata?.annotations?.[ANN_INJECTED] === 'true';
    }, { timeoutMs: 20_000, intervalMs: 250 });

    const refused: string[] = [];
    const created: V1Pod[] = [];
    let next = 0;
    let second: SickbayProcess | undefined;
    const restart = async () => {
      first.kill('SIGKILL');
      await first.exited;
      second = await spawnSickbay(t, 'burst-2', env, { dir, port });
      processes.push(second);
    };
    let restarting: Promise<void> | undefined;
    const worker = async () => {
      while (next < 200) {
        const i = next++;
        if (i === 50) restarting = restart();
        try {
          created.push(await t.core.createNamespacedPod({ namespace: ns, body: { metadata: { name: `pod-${i}`, labels: { app: 'burst' } }, spec: { containers: [{ name: 'app', image: 'example.com/app:1', command: ['/app'] }] } } }));
        } catch (err) {
          refused.push(`pod-${i}: ${(err as { body?: string }).body ?? String(err)}`);
        }
        // About 10 creations a second: a rollout's pace, not a flood.
        await new Promise((r) => setTimeout(r, 800));
      }
    };
    const startedAt = Date.now();
    await Promise.all(Array.from({ length: 8 }, worker));
    await restarting;
    fig('creations took', secs(Date.now() - startedAt));
    fig('refused', refused.length);
    assert.deepEqual(refused, [], 'pods refused while sickbay was down');
    assert.equal(created.length, 200);

    const escaped = created.filter((p) => p.metadata?.annotations?.[ANN_INJECTED] !== 'true').map((p) => p.metadata!.name!);
    fig('escaped injection', escaped.length);
    assert.ok(escaped.length > 0, 'the kill let some pods through uninjected (else the scenario tested nothing)');
    const back = second!;
    await waitFor('the gauge counting every escaped pod', async () => (await metric(back, 'sickbay_uninjected_pods').catch(() => NaN)) === escaped.length, { timeoutMs: 90_000, intervalMs: 500 });
    // Events are paced (30 a minute): wait for all of them.
    const reportedAt = Date.now();
    await waitFor('a NotInjected Event on every escaped pod', async () => {
      const evs = await eventsOf(t, ns, { reason: 'NotInjected' });
      return escaped.every((n) => evs.some((e) => e.involvedObject.name === n));
    }, { timeoutMs: 180_000, intervalMs: 1000 });
    fig('all Events within', secs(Date.now() - reportedAt));
    fig('reported', `${escaped.length} of ${escaped.length}`);
    const injectedAfter = created.filter((p) => p.metadata?.annotations?.[ANN_INJECTED] === 'true').length;
    fig('injected', injectedAfter);
    await unregisterWebhooks(t.kc);
    back.kill('SIGTERM');
    await back.exited;
  }, { timeout: 400_000 });

  scenario('10,000 generated AdmissionReviews', {
    load: '10,000 AdmissionReviews (random pod shapes, sizes to 3 MB, unicode, malformed JSON), 8 in flight, /mutate and /validate',
    fault: 'hostile and malformed input',
    outcome: '0 crashes, 0 hangs, 0 5xx; every well-typed pod answered 200 (allowed by /mutate, its patch applies); malformed input a valid AdmissionReview or a 4xx',
  }, async (fig) => {
    const { proc, crashed } = await webhookOnly('fuzz');

    const seed = Number(process.env.SICKBAY_CHAOS_SEED ?? Date.now() % 2 ** 31);
    fig('seed', seed);
    const inputs = sample(reviewArbitrary(), { numRuns: Number(process.env.SICKBAY_CHAOS_REVIEWS ?? 10_000), seed });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 8 });
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    let patches = 0;
    let valid = 0;
    let validOk = 0;

    const health = watchHealth(proc, 50);

    let next = 0;
    const startedAt = Date.now();
    const worker = async () => {
      while (next < inputs.length && !crashed() && failures.length < 20) {
        const i = next++;
        const input = inputs[i]!;
        const route = i % 2 ? '/validate' : '/mutate';
        const body = expand(input.body);
        let reply = await post(proc.port, proc.caPem, route, body, agent).catch((err: Error) => ({ status: -1, body: err.message }));
        // Over the body limit, sickbay answers 413 and closes the connection without
        // reading the rest (the API server never sends that much): a client still
        // writing may see the close (EPIPE) before the answer. That is the refusal.
        if (reply.status === -1 && Buffer.byteLength(body) > MAX_BODY_BYTES && /EPIPE|ECONNRESET/.test(reply.body)) reply = { status: 413, body: '' };
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
        const problem = judge(input, route, reply);
        if (input.valid) valid++;
        if (input.valid && !problem) validOk++;
        if (problem === 'patched') {
          patches++;
          if (input.valid) validOk++;
        }
        else if (problem) failures.push(`#${i} ${route}: ${problem}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const h = await health.stop(fig);
    agent.destroy();
    const took = Date.now() - startedAt;
    fig('reviews', `${next} in ${secs(took)}`);
    fig('answers', answers(statuses));
    fig('patches applied', patches);
    fig('well-typed pods answered 200', `${validOk} of ${valid}`);
    fig('crashes', crashed() ? 1 : 0);
    assert.equal(crashed(), false, `sickbay exited:\n${proc.output().slice(-2000)}`);
    assert.deepEqual([...failures, ...h.failures], []);
    assert.equal(next, inputs.length);
    assert.ok(valid > inputs.length / 4, `${valid} well-typed pods among ${inputs.length}: the generator must send many`);
    assert.equal(validOk, valid);
  }, { timeout: 400_000 });

  scenario('eight 2 MiB pods of 10,000 containers at once, again and again', {
    load: 'rounds of 8 concurrent /mutate requests, each a 2 MiB pod of 10,000 containers, for 15 s; /healthz from another process every 20 ms',
    fault: 'hostile admission load (the review found ~509 MB resident and /healthz stalled ~1 s)',
    outcome: 'no 5xx, no crash; resident memory under the 512 Mi limit; /healthz p99 under 100 ms',
  }, async (fig) => {
    const { proc, crashed } = await webhookOnly('hostile');
    const pad = 'x'.repeat(150);
    const containers = Array.from({ length: 10_000 }, (_, i) => ({ name: `c${i}`, image: 'example.com/app:1', command: ['/app', `--${pad}`] }));
    const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', operation: 'CREATE', userInfo: { username: 'x' }, object: { metadata: { name: 'wide' }, spec: { containers } } } });
    fig('body', `${(body.length / 2 ** 20).toFixed(1)} MiB`);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 8 });
    const statuses = new Map<number, number>();
    const health = watchHealth(proc, 20);
    const startedAt = Date.now();
    let rounds = 0;
    while (Date.now() - startedAt < 15_000 && !crashed()) {
      const replies = await Promise.all(Array.from({ length: 8 }, () => post(proc.port, proc.caPem, '/mutate', body, agent).catch((err: Error) => ({ status: -1, body: err.message }))));
      for (const r of replies) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      rounds++;
    }
    const { p99, rssMax, failures } = await health.stop(fig);
    agent.destroy();
    fig('rounds', rounds);
    fig('answers', answers(statuses));
    assert.equal(crashed(), false, `sickbay exited:\n${proc.output().slice(-2000)}`);
    assert.ok([...statuses.keys()].every((s) => s === 200 || s === 429), `answers: ${answers(statuses)}`);
    assert.deepEqual(failures, []);
    assert.ok(rssMax < 512 * 2 ** 20, `resident ${rssMax} bytes`);
    assert.ok(p99 < 100, `/healthz p99 ${p99.toFixed(1)} ms`);
  }, { timeout: 120_000 });
  /** A well-typed pod review, small: what the API server sends for every pod creation. */
  const smallReview = (i: number) =>
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: `u-${i}`, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', operation: 'CREATE', userInfo: { username: 'x' }, object: { metadata: { name: `p-${i}` }, spec: { containers: [{ name: 'app', image: 'example.com/app:1', command: ['/app'] }] } } } });
  /** /mutate on a connection of its own, /readyz on the probe port: what the API server and the kubelet see meanwhile. */
  const measure = async (proc: SickbayProcess, healthPort: number, n: number) => {
    const mutate: number[] = [];
    const probes: number[] = [];
    const failures: string[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const agent = new https.Agent({ keepAlive: false });
      const r = await post(proc.port, proc.caPem, '/mutate', smallReview(i), agent).catch((err: Error) => ({ status: -1, body: err.message }));
      agent.destroy();
      if (r.status === 200) mutate.push(performance.now() - t0);
      else failures.push(`/mutate ${r.status}: ${r.body.slice(0, 120)}`);
      const t1 = performance.now();
      const probe = await fetch(`http://127.0.0.1:${healthPort}/readyz`).then((x) => x.status, (err: Error) => err.message);
      if (probe === 200) probes.push(performance.now() - t1);
      else failures.push(`/readyz on the probe port: ${probe}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { mutate, probes, failures };
  };
  const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)] ?? NaN;

  scenario('1,100 idle keep-alive clients', {
    load: '1,100 TLS clients each send one GET /healthz and keep the connection open (keep-alive), more than the 1,024-connection cap',
    fault: 'the HTTPS port starved of connections by idle clients (a review found new connections reset once 1,024 were held)',
    outcome: 'every /mutate on a new connection answered 200; the probe port answers; idle connections are closed to make room',
  }, async (fig) => {
    const [healthPort] = (await freePorts(1)) as [number];
    const proc = await spawnSickbay(t, 'idle', { SICKBAY_CONTROLLERS: 'false', SICKBAY_LEADER_ELECTION: 'false', SICKBAY_LOG_LEVEL: 'error', SICKBAY_HEALTH_PORT: String(healthPort) });
    processes.push(proc);
    await ready(proc);
    const held: tls.TLSSocket[] = [];
    let answered = 0;
    let closedByServer = 0;
    const started = Date.now();
    for (let i = 0; i < 1100; i++) {
      await new Promise<void>((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port: proc.port, ca: proc.caPem, servername: 'localhost' }, () => {
          socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
          resolve();
        });
        socket.on('data', (d) => (String(d).startsWith('HTTP/1.1 200') ? answered++ : undefined));
        socket.on('error', () => resolve());
        socket.on('close', () => closedByServer++);
        held.push(socket);
      });
    }
    fig('clients opened', `${held.length} in ${secs(Date.now() - started)}`);
    const m = await measure(proc, healthPort, 40);
    fig('answered before held idle', answered);
    fig('closed by sickbay to make room', closedByServer);
    fig('/mutate on new connections', `${m.mutate.length} of 40, p99 ${p99(m.mutate).toFixed(1)} ms`);
    fig('probe port /readyz', `${m.probes.length} of 40, p99 ${p99(m.probes).toFixed(1)} ms`);
    fig('idle evictions', await metric(proc, 'sickbay_idle_connection_evictions_total'));
    for (const sck of held) sck.destroy();
    assert.deepEqual(m.failures, []);
    assert.ok(closedByServer > 0, 'idle connections were closed to make room');
  }, { timeout: 180_000 });

  scenario('8 slow uploads', {
    load: '8 /mutate requests that announce 3 MiB (or send no length) and trickle one byte a second; /mutate and the probe port measured meanwhile',
    fault: 'slow uploads holding the admission budget (a review found 4 enough to answer every other admission 429)',
    outcome: 'every other /mutate answered 200, never 429; the probe port answers',
  }, async (fig) => {
    const [healthPort] = (await freePorts(1)) as [number];
    const proc = await spawnSickbay(t, 'slow', { SICKBAY_CONTROLLERS: 'false', SICKBAY_LEADER_ELECTION: 'false', SICKBAY_LOG_LEVEL: 'error', SICKBAY_HEALTH_PORT: String(healthPort) });
    processes.push(proc);
    await ready(proc);
    const slow = Array.from({ length: 8 }, (_, i) => {
      const socket = tls.connect({ host: '127.0.0.1', port: proc.port, ca: proc.caPem, servername: 'localhost' });
      socket.on('error', () => {});
      const length = i % 2 ? `Content-Length: ${MAX_BODY_BYTES}` : 'Transfer-Encoding: chunked';
      socket.write(`POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${length}\r\n\r\n`);
      const trickle = setInterval(() => socket.write(i % 2 ? ' ' : '1\r\n \r\n'), 1_000);
      return { socket, trickle };
    });
    await new Promise((r) => setTimeout(r, 500));
    const m = await measure(proc, healthPort, 40);
    for (const s of slow) {
      clearInterval(s.trickle);
      s.socket.destroy();
    }
    fig('/mutate meanwhile', `${m.mutate.length} of 40, p99 ${p99(m.mutate).toFixed(1)} ms`);
    fig('probe port /readyz', `${m.probes.length} of 40, p99 ${p99(m.probes).toFixed(1)} ms`);
    assert.deepEqual(m.failures, []);
  }, { timeout: 120_000 });
});

const answers = (statuses: Map<number, number>) =>
  [...statuses.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([s, n]) => `${s}: ${n}`)
    .join(', ');

function post(port: number, ca: string, route: string, body: string, agent: https.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: route, method: 'POST', ca, agent, servername: 'localhost', headers: { 'content-type': 'application/json' }, timeout: 15_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    // No answer in 15 s (the server's own limit is 10 s) is a hang.
    req.on('timeout', () => req.destroy(new Error('no answer within 15 s (a hang)')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Why an answer is wrong, 'patched' for a good answer with a patch, '' for a good one. */
function judge(input: GeneratedReview, route: string, reply: { status: number; body: string }): string {
  if (reply.status === -1) return reply.body;
  // A pod the API server could send must be reviewed, not refused as malformed.
  if (input.valid && reply.status !== 200) return `a well-typed pod answered HTTP ${reply.status}: ${reply.body.slice(0, 200)}`;
  if (reply.status >= 400 && reply.status < 500) return '';
  if (reply.status !== 200) return `HTTP ${reply.status}: ${reply.body.slice(0, 200)}`;
  let review: { apiVersion?: string; kind?: string; response?: { uid?: unknown; allowed?: unknown; patch?: string; patchType?: string } };
  try {
    review = JSON.parse(reply.body);
  } catch {
    return `200 with a body that is not JSON: ${reply.body.slice(0, 100)}`;
  }
  if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') return `200 but not an AdmissionReview: ${reply.body.slice(0, 100)}`;
  const r = review.response;
  if (!r || typeof r.allowed !== 'boolean') return 'an AdmissionReview without response.allowed';
  if (input.valid && route === '/mutate' && r.allowed !== true) return `a well-typed pod refused by /mutate: ${reply.body.slice(0, 200)}`;
  if (input.request && JSON.stringify(r.uid) !== JSON.stringify(input.request.uid)) return `response.uid ${JSON.stringify(r.uid)} is not the request's`;
  if (r.patch === undefined) return '';
  if (route !== '/mutate') return 'a patch from /validate';
  if (r.patchType !== 'JSONPatch') return `patchType ${r.patchType}`;
  let ops: unknown;
  try {
    ops = JSON.parse(Buffer.from(r.patch, 'base64').toString('utf8'));
  } catch {
    return 'a patch that is not base64 JSON';
  }
  if (!Array.isArray(ops)) return 'a patch that is not a JSON Patch array';
  const copy = structuredClone(input.request?.object);
  const errors = applyPatch(copy, ops as Parameters<typeof applyPatch>[1]).filter((e) => e !== null);
  return errors.length ? `the patch does not apply: ${errors.map((e) => e?.message).join('; ')}` : 'patched';
}
