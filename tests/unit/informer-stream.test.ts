// The informer's list and watch handling in seconds (issue 29): a scripted HTTPS endpoint
// plays the API server's part, list pages and watch streams, so each case is one
// behaviour: a watch that ends is resumed from its last version; a 410 (the version
// compacted away) relists and delivers what changed meanwhile, deletions included; a
// watch gone silent is restarted; a server error is retried with back-off; a throwing
// handler harms neither the others nor the informer. The real API server's behaviour is
// in the integration and chaos suites (an API server restart, 410s after etcd compaction).
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createCA, issueCertificate } from '../../src/tls/certificates.js';
import { silentLogger } from '../../src/core/log.js';
import { Informer, type KubeObject } from '../../src/kube/informer.js';
import type { ApiAccess } from '../../src/kube/rest.js';
import { waitFor } from '../../src/util/wait.js';

type Obj = KubeObject & { metadata: { name: string; resourceVersion: string } };
const obj = (name: string, rv: number): Obj => ({ metadata: { name, resourceVersion: String(rv) } });

/** What the endpoint answers next: a list, or a watch's events (then it ends, or stays open). */
type Step = { list: Obj[]; rv: number; status?: number } | { watch: Array<{ type: string; object: unknown }>; hold?: boolean };

describe('Informer against a scripted API server', () => {
  let server: https.Server;
  let access: ApiAccess;
  let script: Step[] = [];
  const requests: string[] = [];

  before(async () => {
    const ca = createCA('test-ca', 1);
    const leaf = issueCertificate(ca, { commonName: '127.0.0.1', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays: 1, usages: ['server'] });
    server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
      const url = new URL(req.url!, 'https://x');
      const watching = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
      requests.push(`${watching ? 'watch' : 'list'} rv=${url.searchParams.get('resourceVersion') ?? ''}`);
      const step = script.shift();
      if (!step) return void res.writeHead(500).end('{"kind":"Status","code":500,"message":"script over"}');
      if ('list' in step) {
        if (step.status) return void res.writeHead(step.status, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: step.status, message: 'scripted' }));
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: step.list, metadata: { resourceVersion: String(step.rv) } }));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      for (const e of step.watch) res.write(`${JSON.stringify(e)}\n`);
      if (!step.hold) res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    access = { getCurrentCluster: () => ({ server: `https://127.0.0.1:${port}` }), applyToHTTPSOptions: async (o) => void (o.ca = ca.certPem) };
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  /** Runs an informer over `steps`, recording what its handlers saw, until `until` holds. */
  async function run(steps: Step[], until: (events: string[]) => boolean, o: { silenceMs?: number; throwing?: boolean } = {}) {
    script = steps;
    requests.length = 0;
    const events: string[] = [];
    const inf = new Informer<Obj>(access as never, { resource: 'things', path: '/api/v1/things', log: silentLogger(), silenceMs: o.silenceMs });
    if (o.throwing) inf.on({ add: () => { throw new Error('a handler that throws'); } });
    inf.on({ add: (x) => void events.push(`add ${x.metadata.name}`), update: (x) => void events.push(`update ${x.metadata.name}`), delete: (x) => void events.push(`delete ${x.metadata.name}`) });
    const abort = new AbortController();
    const running = inf.run(abort.signal);
    try {
      await waitFor('the informer to see it all', () => until(events), { timeoutMs: 15_000, intervalMs: 20 });
    } finally {
      abort.abort();
      await running;
    }
    return { events, inf };
  }

  it('lists, watches, and resumes an ended watch from its last version without listing again', async () => {
    const { events, inf } = await run(
      [
        { list: [obj('a', 1), obj('b', 2)], rv: 10 },
        { watch: [{ type: 'ADDED', object: obj('c', 11) }, { type: 'MODIFIED', object: obj('a', 12) }] },
        { watch: [{ type: 'BOOKMARK', object: { metadata: { resourceVersion: '15' } } }, { type: 'DELETED', object: obj('b', 16) }], hold: true },
      ],
      (e) => e.includes('delete b'),
    );
    assert.deepEqual(events, ['add a', 'add b', 'add c', 'update a', 'delete b']);
    assert.deepEqual(requests, ['list rv=', 'watch rv=10', 'watch rv=12']);
    assert.deepEqual([...inf.list()].map((x) => x.metadata.name).sort(), ['a', 'c']);
  });

  it('relists on 410 Gone and delivers what changed meanwhile, deletions included', async () => {
    const { events } = await run(
      [
        { list: [obj('a', 1), obj('b', 2)], rv: 10 },
        { watch: [{ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old resource version' } }] },
        // Meanwhile b was deleted, a changed and d was created: the relist says so.
        { list: [obj('a', 20), obj('d', 21)], rv: 30 },
        { watch: [], hold: true },
      ],
      (e) => e.length >= 5,
    );
    assert.deepEqual(events.slice(0, 2), ['add a', 'add b']);
    assert.deepEqual(events.slice(2).sort(), ['add d', 'delete b', 'update a']);
    assert.deepEqual(requests, ['list rv=', 'watch rv=10', 'list rv=', 'watch rv=30']);
  });

  it('restarts a watch that has gone silent (no event, not even a bookmark)', async () => {
    const { events } = await run(
      [
        { list: [obj('a', 1)], rv: 10 },
        { watch: [], hold: true }, // a stalled stream: open, nothing comes
        { watch: [{ type: 'ADDED', object: obj('b', 11) }], hold: true },
      ],
      (e) => e.includes('add b'),
      { silenceMs: 300 },
    );
    assert.deepEqual(events, ['add a', 'add b']);
    assert.deepEqual(requests, ['list rv=', 'watch rv=10', 'watch rv=10']);
  });

  it('retries a failed list with back-off, and a throwing handler harms neither the other handlers nor the informer', async () => {
    const { events } = await run(
      [
        { list: [], rv: 0, status: 500 },
        { list: [obj('a', 1)], rv: 10 },
        { watch: [{ type: 'ADDED', object: obj('b', 11) }], hold: true },
      ],
      (e) => e.includes('add b'),
      { throwing: true },
    );
    assert.deepEqual(events, ['add a', 'add b']);
    assert.deepEqual(requests, ['list rv=', 'list rv=', 'watch rv=10']);
  });
});
