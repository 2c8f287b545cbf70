// A typed API call past its deadline: the HTTP request itself is aborted (the server sees
// the connection go), not only the wait for it, so a write given up on cannot land later
// behind the back of a guard that counted it as failed (issue 29).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { callWithin, mergePatch } from '../../src/kube/api.js';

describe('callWithin', () => {
  let server: http.Server;
  const closed: string[] = [];
  const seen: string[] = [];
  let core: CoreV1Api;

  before(async () => {
    // An API server that reads each request and never answers (a stalled apiserver).
    server = http.createServer((req) => {
      seen.push(`${req.method} ${req.url} ${req.headers['content-type'] ?? ''}`);
      req.resume();
      req.socket.on('close', () => closed.push(`${req.method} ${req.url}`));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    core = kc.makeApiClient(CoreV1Api);
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('aborts the request at the deadline and says what had no answer, keeping the content type it was given', async () => {
    const started = Date.now();
    await assert.rejects(
      callWithin(300, 'quarantine patch', (o) => core.patchNamespacedPod({ name: 'p', namespace: 'n', body: { metadata: { labels: { a: 'b' } } } }, o), mergePatch),
      /^Error: quarantine patch: no answer within 300 ms \(the request was aborted\)$/,
    );
    assert.ok(Date.now() - started < 2_000, 'rejected at the deadline');
    assert.match(seen.at(-1) ?? '', /^PATCH \/api\/v1\/namespaces\/n\/pods\/p application\/merge-patch\+json$/);
    // The server sees the client go: the request is not left running.
    for (let i = 0; i < 50 && !closed.includes('PATCH /api/v1/namespaces/n/pods/p'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(closed.includes('PATCH /api/v1/namespaces/n/pods/p'), `the connection was closed: ${closed.join(', ')}`);
  });

  it('passes other errors through as they are', async () => {
    await assert.rejects(
      callWithin(5_000, 'read', () => Promise.reject(Object.assign(new Error('HTTP-Code: 404'), { code: 404 }))),
      (err: Error & { code?: number }) => err.code === 404,
    );
  });
});
