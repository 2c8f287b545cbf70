// The server as a black box: real TLS on port 0, real requests, the ugly ones included.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { writeCerts } from '../../src/commands/certs.js';
import { type ServeHandle, serve } from '../../src/commands/serve.js';
import { readConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
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
