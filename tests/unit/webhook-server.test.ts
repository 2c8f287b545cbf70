// The server as a black box: real TLS on port 0, real requests, the ugly ones included.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { writeCerts } from '../../src/cli/certs.js';
import { type ServeHandle, serve } from '../../src/manager/serve.js';
import { readConfig } from '../../src/core/config.js';
import { silentLogger } from '../../src/core/log.js';
import { Metrics } from '../../src/core/metrics.js';
import { HttpsServer } from '../../src/server/https-server.js';
import { waitFor } from '../../src/util/wait.js';
import { podCreateRequest, review } from '../support/admission.js';
import { request } from '../support/https.js';

const pod = JSON.parse(readFileSync(new URL('../golden/mutate/several-containers.pod.json', import.meta.url), 'utf8'));

describe('sickbay serve over HTTPS', () => {
  let dir: string;
  let handle: ServeHandle;
  let ca: string;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sickbay-serve-'));
    const certs = writeCerts({ outDir: dir, service: 'sickbay', namespace: 'sickbay-system', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays: 1 });
    ca = certs.caPem;
    const config = readConfig({
      SICKBAY_PORT: '0',
      SICKBAY_BIND_ADDRESS: '127.0.0.1',
      SICKBAY_TLS_CERT: certs.certFile,
      SICKBAY_TLS_KEY: certs.keyFile,
      SICKBAY_DRAIN: '300ms',
      SICKBAY_MAX_BODY_BYTES: '65536',
      SICKBAY_CONTROLLERS: 'false',
    });
    handle = await serve(config, silentLogger(), { metrics: new Metrics() });
  });

  after(async () => {
    await handle?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (p: string, body: string | Buffer, contentType = 'application/json') => request(handle.port, ca, p, { body, contentType });

  it('mutates a pod and echoes the uid', async () => {
    const req = podCreateRequest(pod);
    const res = await post('/mutate', JSON.stringify(review(req)));
    assert.equal(res.status, 200);
    const out = res.json();
    assert.equal(out.apiVersion, 'admission.k8s.io/v1');
    assert.equal(out.kind, 'AdmissionReview');
    assert.equal(out.response.uid, req.uid);
    assert.equal(out.response.allowed, true);
    assert.equal(out.response.patchType, 'JSONPatch');
    assert.ok(JSON.parse(Buffer.from(out.response.patch, 'base64').toString()).length > 0);
  });

  const transport: Array<[string, string | Buffer, string, number, RegExp]> = [
    ['malformed JSON', '{"apiVersion":', 'application/json', 400, /not JSON/],
    ['wrong content type', JSON.stringify(review(podCreateRequest(pod))), 'text/plain', 415, /application\/json/],
    ['no request', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), 'application/json', 400, /no request/],
    ['no uid', JSON.stringify(review({ ...podCreateRequest(pod), uid: '' })), 'application/json', 400, /no uid/],
    ['unknown apiVersion', JSON.stringify({ ...review(podCreateRequest(pod)), apiVersion: 'admission.k8s.io/v1beta1' }), 'application/json', 400, /unsupported apiVersion/],
    ['not an object', '[1,2,3]', 'application/json', 400, /not an AdmissionReview/],
    ['a body over the limit', Buffer.alloc(70_000, 'x'), 'application/json', 413, /limit/],
  ];
  for (const [name, body, type, status, message] of transport) {
    it(`answers ${status} to ${name}`, async () => {
      const res = await post('/mutate', body, type);
      assert.equal(res.status, status);
      assert.match(res.json().error, message);
    });
  }

  it('allows a non-Pod object and a DELETE without a patch', async () => {
    const cm = { ...podCreateRequest(pod), kind: { group: '', version: 'v1', kind: 'ConfigMap' }, object: { metadata: { name: 'x' }, data: {} } };
    const del = { ...podCreateRequest(pod), operation: 'DELETE' as const, object: undefined, oldObject: pod };
    for (const req of [cm, del]) {
      for (const p of ['/mutate', '/validate']) {
        const res = await post(p, JSON.stringify(review(req)));
        assert.equal(res.status, 200);
        assert.deepEqual(res.json().response, { uid: req.uid, allowed: true });
      }
    }
  });

  it('survives a burst of garbage and still serves', async () => {
    const junk = await Promise.all(Array.from({ length: 50 }, (_, i) => post(i % 2 ? '/validate' : '/mutate', Buffer.from([0xff, 0xfe, i]))));
    assert.ok(junk.every((r) => r.status === 400));
    const ok = await post('/mutate', JSON.stringify(review(podCreateRequest(pod))));
    assert.equal(ok.status, 200);
  });

  it("answers a pod whose fields have the wrong types with a 400 naming the field, not a 500 (found by the fault suite's generator)", async () => {
    const shapes: [unknown, RegExp][] = [
      [{ metadata: {}, spec: { containers: 7953086711881193 } }, /spec\.containers must be a list/],
      [{ metadata: {}, spec: { containers: [null] } }, /spec\.containers\[0\] must be an object/],
      [{ metadata: {}, spec: { containers: [{ name: 'a', command: ['x', 4, null] }] } }, /spec\.containers\[0\]\.command must be a list of strings/],
      [{ metadata: {}, spec: { initContainers: [{ name: 'a', livenessProbe: { exec: { command: 'sh' } } }] } }, /spec\.initContainers\[0\]\.livenessProbe\.exec\.command/],
      [{ metadata: { labels: { app: 5 } }, spec: { containers: [] } }, /metadata\.labels must be a map of strings/],
      [{ metadata: 'x' }, /metadata must be an object/],
    ];
    for (const [object, message] of shapes) {
      const req = { ...podCreateRequest(pod), object: object as typeof pod };
      const res = await post('/mutate', JSON.stringify(review(req)));
      assert.equal(res.status, 400, JSON.stringify(object));
      assert.match(res.body, message);
    }
    // The relabel guard reads labels and annotations only: it refuses those of the wrong type.
    const res = await post('/validate', JSON.stringify(review({ ...podCreateRequest(pod), object: { metadata: { annotations: { a: [] } } } as typeof pod })));
    assert.equal(res.status, 400);
    assert.match(res.body, /object is not a valid Pod: metadata\.annotations must be a map of strings/);
    // Absent and null optional fields are what the API server sends: still injected.
    const ok = await post('/mutate', JSON.stringify(review({ ...podCreateRequest(pod), object: { ...pod, spec: { ...pod.spec!, initContainers: null, volumes: null } } as unknown as typeof pod })));
    assert.equal(ok.status, 200);
    assert.ok(ok.json().response.patch);
  });

  it('serves health, readiness and metrics', async () => {
    assert.equal((await request(handle.port, ca, '/healthz', { method: 'GET' })).status, 200);
    assert.equal((await request(handle.port, ca, '/readyz', { method: 'GET' })).status, 200);
    const metrics = await request(handle.port, ca, '/metrics', { method: 'GET' });
    assert.match(metrics.body, /sickbay_admission_requests_total\{webhook="mutate",outcome="patched"\} [1-9]/);
    assert.match(metrics.body, /sickbay_admission_requests_total\{webhook="mutate",outcome="http_413"\} 1/);
    assert.equal((await request(handle.port, ca, '/nope', { method: 'GET' })).status, 404);
  });

  it('rotates its certificate under continuous load without a failed request', async () => {
    const serial = () =>
      new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: handle.port, ca, servername: 'localhost' }, () => {
          resolve(s.getPeerX509Certificate()!.serialNumber);
          s.end();
        });
        s.on('error', reject);
      });
    const before = await serial();
    const agent = new https.Agent({ keepAlive: true, maxSockets: 4 });
    let stop = false;
    let sent = 0;
    const failures: string[] = [];
    const body = JSON.stringify(review(podCreateRequest(pod)));
    const clients = Array.from({ length: 4 }, async (_, i) => {
      // Half the clients reuse connections (kept across the swap), half open new ones.
      while (!stop) {
        try {
          const res = await request(handle.port, ca, '/mutate', { body, agent: i % 2 ? agent : undefined });
          sent++;
          if (res.status !== 200) failures.push(`HTTP ${res.status}`);
        } catch (err) {
          failures.push(String(err));
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    writeCerts({ outDir: dir, service: 'sickbay', namespace: 'sickbay-system', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays: 1 });
    let after = before;
    for (let i = 0; i < 100 && after === before; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await serial();
    }
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(clients);
    agent.destroy();
    assert.deepEqual(failures, []);
    assert.ok(sent > 20, `the load ran (${sent} requests)`);
    assert.notEqual(after, before, 'the new certificate is served after rotation');
  });

  it('on shutdown fails readiness, keeps serving through the drain, then closes', async () => {
    const closing = handle.shutdown();
    const ready = await request(handle.port, ca, '/readyz', { method: 'GET' });
    assert.equal(ready.status, 503);
    const during = await post('/mutate', JSON.stringify(review(podCreateRequest(pod))));
    assert.equal(during.status, 200, 'admission keeps working during the drain');
    await closing;
    await assert.rejects(request(handle.port, ca, '/healthz', { method: 'GET' }));
  });
});

describe('slow and greedy clients', () => {
  let dir: string;
  let server: HttpsServer;
  let port: number;
  let ca: string;
  const metrics = new Metrics();
  const TIMEOUT = 1_500;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sickbay-slow-'));
    const certs = writeCerts({ outDir: dir, service: 'sickbay', namespace: 'sickbay-system', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays: 1 });
    ca = certs.caPem;
    server = new HttpsServer({
      port: 0,
      host: '127.0.0.1',
      certFile: certs.certFile,
      keyFile: certs.keyFile,
      drainMs: 0,
      handler: (req, res) => {
        req.resume();
        req.on('end', () => res.end('ok'));
      },
      metrics,
      log: silentLogger(),
      requestTimeoutMs: TIMEOUT,
      maxConnections: 3,
    });
    port = await server.listen();
  });
  after(async () => {
    await server.close(0);
    rmSync(dir, { recursive: true, force: true });
  });

  const tlsConnect = () =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => resolve(s));
      s.once('error', reject);
    });
  const closedWithin = (s: net.Socket, ms: number) =>
    new Promise<number>((resolve, reject) => {
      const started = Date.now();
      const t = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
      s.once('close', () => {
        clearTimeout(t);
        resolve(Date.now() - started);
      });
      s.on('error', () => {});
    });

  it('cuts a body trickled a byte at a time within the request timeout and its check interval', async () => {
    const s = await tlsConnect();
    s.write('POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n');
    const trickle = setInterval(() => s.writable && s.write('x'), 200);
    let reply = '';
    s.on('data', (d) => (reply += d));
    try {
      await closedWithin(s, TIMEOUT + 2_500);
    } finally {
      clearInterval(trickle);
    }
    assert.doesNotMatch(reply, /200 OK/, 'the trickled request was never served');
  });

  it('cuts a TCP connection that never starts TLS', async () => {
    const s = net.connect({ host: '127.0.0.1', port });
    await new Promise((r) => s.once('connect', r));
    await closedWithin(s, TIMEOUT + 2_500);
  });

  it('refuses connections beyond the cap, counts them, and serves again once one closes', async () => {
    const held = [await tlsConnect(), await tlsConnect(), await tlsConnect()];
    const before = (await metrics.registry.getSingleMetric('sickbay_connections_dropped_total')!.get()).values[0]?.value ?? 0;
    await assert.rejects(tlsConnect());
    const after = (await metrics.registry.getSingleMetric('sickbay_connections_dropped_total')!.get()).values[0]?.value ?? 0;
    assert.equal(after, before + 1);
    held.pop()!.destroy();
    await waitFor('a connection accepted again', async () => (await request(port, ca, '/x', { method: 'GET' }).catch(() => undefined))?.status === 200, { timeoutMs: 5_000 });
    for (const s of held) s.destroy();
  });
});

describe('admission under hostile load', () => {
  let dir: string;
  let handle: ServeHandle;
  let ca: string;
  const MAX_BODY = 3 * 1024 * 1024;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sickbay-hostile-'));
    const certs = writeCerts({ outDir: dir, service: 'sickbay', namespace: 'sickbay-system', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays: 1 });
    ca = certs.caPem;
    const config = readConfig({ SICKBAY_PORT: '0', SICKBAY_BIND_ADDRESS: '127.0.0.1', SICKBAY_TLS_CERT: certs.certFile, SICKBAY_TLS_KEY: certs.keyFile, SICKBAY_DRAIN: '0s', SICKBAY_MAX_BODY_BYTES: String(MAX_BODY), SICKBAY_CONTROLLERS: 'false' });
    handle = await serve(config, silentLogger(), { metrics: new Metrics() });
  });
  after(async () => {
    await handle?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A pod of n containers, padded to about `bytes` with an annotation. */
  const bigPod = (n: number, bytes = 0) => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: `big-${n}`, namespace: 'shop', annotations: {} as Record<string, string> }, spec: { containers: Array.from({ length: n }, (_, i) => ({ name: `c${i}`, image: 'x', command: ['/app', 'ünïcode'] })) } };
    const size = JSON.stringify(pod).length;
    if (bytes > size) pod.metadata.annotations.pad = 'x'.repeat(bytes - size - 200);
    return JSON.stringify(review(podCreateRequest(pod as never)));
  };
  const mutate = (body: string) => request(handle.port, ca, '/mutate', { body });

  it('admits a pod of 40,000 containers as it is, with a warning, instead of a 500', async () => {
    const res = await mutate(bigPod(40_000));
    assert.equal(res.status, 200, res.body.slice(0, 300));
    const out = res.json().response;
    assert.equal(out.allowed, true);
    assert.equal(out.patch, undefined);
    assert.match(out.warnings[0], /at most 64 containers; this one has 40000/);
  });

  it('answers eight concurrent 2 MiB pods of 10,000 containers, never a 500, and stays healthy meanwhile', async (ctx) => {
    const body = bigPod(10_000, 2 * 1024 * 1024);
    let done = false;
    const health: number[] = [];
    const probing = (async () => {
      while (!done) {
        const t = performance.now();
        const r = await request(handle.port, ca, '/healthz', { method: 'GET' });
        assert.equal(r.status, 200);
        health.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const answers = await Promise.all(Array.from({ length: 8 }, () => mutate(body)));
    done = true;
    await probing;
    for (const a of answers) assert.ok(a.status === 200 || a.status === 429, `${a.status} ${a.body.slice(0, 200)}`);
    assert.ok(answers.some((a) => a.status === 200));
    for (const a of answers.filter((x) => x.status === 200)) assert.equal(a.json().response.allowed, true);
    health.sort((a, b) => a - b);
    ctx.diagnostic(`health under load: ${health.length} probes, median ${health[health.length >> 1]?.toFixed(1)} ms, max ${health.at(-1)?.toFixed(1)} ms; answers ${answers.map((a) => a.status).join(',')}`);
  });

  it('slow uploads hold only the bytes they sent: eight announcing 3 MiB, or with no length at all, leave the budget to others (issue 31)', async () => {
    const held = Array.from({ length: 8 }, (_, i) => {
      const socket = tls.connect({ host: '127.0.0.1', port: handle.port, ca, servername: 'localhost' });
      socket.on('error', () => {});
      const length = i % 2 ? `Content-Length: ${MAX_BODY}` : 'Transfer-Encoding: chunked';
      socket.write(`POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${length}\r\n\r\n${i % 2 ? '{' : '1\r\n{\r\n'}`);
      return socket;
    });
    await new Promise((r) => setTimeout(r, 300));
    const answered = await mutate(JSON.stringify(review(podCreateRequest(pod))));
    assert.equal(answered.status, 200, answered.body);
    for (const s of held) s.destroy();
  });

  it('refuses with 429 a request once the bytes actually in flight pass four bodies of the largest size, and gives them back', async () => {
    // Four requests each send all but the last byte of a 3 MiB body: 12 MiB held.
    const held = await Promise.all(Array.from({ length: 4 }, () => new Promise<tls.TLSSocket>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: handle.port, ca, servername: 'localhost' });
      socket.on('error', () => {});
      socket.write(`POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${MAX_BODY}\r\n\r\n`);
      socket.write(Buffer.alloc(MAX_BODY - 1, 0x20), () => resolve(socket));
    })));
    await new Promise((r) => setTimeout(r, 300));
    const refused = await mutate(JSON.stringify(review(podCreateRequest(pod))));
    assert.equal(refused.status, 429, refused.body);
    assert.match(refused.json().error, /reviewing \d+ bytes of admission requests already/);
    for (const s of held) s.destroy();
    await waitFor('the budget given back', async () => (await mutate(JSON.stringify(review(podCreateRequest(pod))))).status === 200, { timeoutMs: 5_000 });
  });

});
