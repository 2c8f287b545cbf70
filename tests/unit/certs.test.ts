import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadAllYaml } from '@kubernetes/client-node';
import { writeCerts } from '../../src/cli/certs.js';
import { createCA, issueCertificate } from '../../src/tls/certificates.js';
import { caOverlapMs, caRotationTime, checkIntervalMs, parseBundle, renewalTime } from '../../src/tls/serving-secret.js';

describe('sickbay certs', () => {
  it('issues a serving certificate for the Service names and extras, signed by its CA, usable for a real handshake', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-certs-'));
    try {
      const r = writeCerts({ outDir: dir, service: 'sickbay', namespace: 'ops', dnsNames: ['sickbay.example.com'], ipAddresses: ['127.0.0.1'], validityDays: 30 });
      const leaf = new X509Certificate(readFileSync(r.certFile));
      const ca = new X509Certificate(readFileSync(r.caFile));
      assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey), 'signed by the CA');
      assert.equal(leaf.subjectAltName, 'DNS:sickbay, DNS:sickbay.ops, DNS:sickbay.ops.svc, DNS:sickbay.ops.svc.cluster.local, DNS:sickbay.example.com, IP Address:127.0.0.1');
      assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth');
      assert.equal(ca.ca, true);
      assert.ok(new Date(leaf.validTo) <= new Date(ca.validTo));

      const server = https.createServer({ cert: readFileSync(r.certFile), key: readFileSync(r.keyFile) }, (_q, s) => s.end('hi'));
      await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
      const port = (server.address() as { port: number }).port;
      for (const servername of ['sickbay.ops.svc', 'sickbay.example.com']) {
        const body = await new Promise<string>((res, rej) =>
          https.get({ host: '127.0.0.1', port, ca: readFileSync(r.caFile), servername }, (m) => m.on('data', (d) => res(String(d)))).on('error', rej),
        );
        assert.equal(body, 'hi', `handshake as ${servername}`);
      }
      server.close();

      const [mutating] = loadAllYaml(readFileSync(r.manifests[0]!, 'utf8'));
      assert.equal(mutating.webhooks[0].clientConfig.caBundle, Buffer.from(readFileSync(r.caFile)).toString('base64'));
      assert.deepEqual({ ...mutating.webhooks[0].clientConfig.service }, { name: 'sickbay', namespace: 'ops', port: 443, path: '/mutate' });

      const serialBefore = leaf.serialNumber;
      writeCerts({ outDir: dir, service: 'sickbay', namespace: 'ops', dnsNames: [], ipAddresses: [], validityDays: 30 });
      assert.equal(new X509Certificate(readFileSync(r.caFile)).serialNumber, ca.serialNumber, 'the CA is kept on re-issue');
      assert.notEqual(new X509Certificate(readFileSync(r.certFile)).serialNumber, serialBefore, 'a new serving certificate');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('uses random serials and never lets a leaf outlive its CA', () => {
    const ca = createCA('short-lived', 2);
    const a = new X509Certificate(issueCertificate(ca, { commonName: 'a', usages: ['server'], validityDays: 365 }).certPem);
    const b = new X509Certificate(issueCertificate(ca, { commonName: 'b', usages: ['server'], validityDays: 365 }).certPem);
    assert.notEqual(a.serialNumber, b.serialNumber);
    assert.ok(a.serialNumber.length >= 30, 'a 128-bit serial');
    assert.equal(a.validTo, new X509Certificate(ca.certPem).validTo);
  });

  it('rejects a bad IP address', () => {
    assert.throws(() => writeCerts({ outDir: tmpdir(), service: 's', namespace: 'n', dnsNames: [], ipAddresses: ['not-an-ip'], validityDays: 1 }), /not an IP address/);
  });
});

describe('renewal of generated serving certificates', () => {
  const day = 86_400_000;
  const from = new Date('2026-01-01T00:00:00Z');
  it('in the last third of a short life, at most 30 days before the end of a long one', () => {
    assert.equal(renewalTime(from, new Date(from.getTime() + 90 * day)).toISOString(), new Date(from.getTime() + 60 * day).toISOString());
    assert.equal(renewalTime(from, new Date(from.getTime() + 3650 * day)).toISOString(), new Date(from.getTime() + 3620 * day).toISOString());
    assert.equal(renewalTime(from, new Date(from.getTime() + 3 * day)).toISOString(), new Date(from.getTime() + 2 * day).toISOString());
  });

  it('the CA rotates halfway through its life (30 days before its end at most), trusted beside the old one for a quarter of its life (7 days at most) before the serving certificate moves', () => {
    const at = (d: number) => new Date(from.getTime() + d * day).toISOString();
    assert.equal(caRotationTime(from, new Date(from.getTime() + 3650 * day)).toISOString(), at(3620));
    assert.equal(caRotationTime(from, new Date(from.getTime() + 10 * day)).toISOString(), at(5));
    assert.equal(caOverlapMs(3650 * day), 7 * day);
    assert.equal(caOverlapMs(120_000), 30_000, 'two minutes: 30 s of overlap');
    // The move happens before the old CA ends, with looks to spare in between.
    for (const life of [120_000, 10 * day, 3650 * day]) {
      const rotate = caRotationTime(from, new Date(from.getTime() + life)).getTime() - from.getTime();
      assert.ok(rotate + caOverlapMs(life) < life, `life ${life}: moved before the old CA ends`);
      assert.ok(caOverlapMs(life) >= 4 * checkIntervalMs(life), `life ${life}: four looks (Secret and bundle) per overlap`);
    }
  });

  it('reads every certificate of a CA bundle, in order', () => {
    const a = createCA('a', 1);
    const b = createCA('b', 1);
    assert.deepEqual(parseBundle(`${a.certPem}\n${b.certPem}`).map((c) => c.subject), ['CN=a', 'CN=b']);
    assert.deepEqual(parseBundle('not a certificate'), []);
  });
});
