// One server for the /mutate benchmark, in its own process: `sickbay` (the real serve()
// with express), `bare` (node:https calling the same admission handler), or `noop` (for
// bench:creation: node:https answering every AdmissionReview "allowed", no patch, with the
// same certificate: what any webhook costs the API server). Prints the port.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { serve } from '../src/manager/serve.js';
import { readConfig } from '../src/core/config.js';
import { silentLogger } from '../src/core/log.js';
import { Metrics } from '../src/core/metrics.js';
import { admissionHandler } from '../src/webhook/admission.js';

const [kind, certFile, keyFile] = process.argv.slice(2) as [string, string, string];
const injection = { shimImage: 'registry.example/sickbay:bench', shimSource: '/opt/sickbay/shim' };

if (kind === 'sickbay') {
  const config = readConfig({ SICKBAY_PORT: '0', SICKBAY_BIND_ADDRESS: '127.0.0.1', SICKBAY_TLS_CERT: certFile, SICKBAY_TLS_KEY: keyFile, SICKBAY_CONTROLLERS: 'false', SICKBAY_DRAIN: '0s' });
  const h = await serve(config, silentLogger(), { metrics: new Metrics() });
  process.stdout.write(`port ${h.port}\n`);
} else if (kind === 'noop') {
  const server = https.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let uid = '';
      try {
        uid = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request?: { uid?: string } }).request?.uid ?? '';
      } catch {
        // answered all the same
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } }));
    });
  });
  server.keepAliveTimeout = 120_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`port ${(server.address() as AddressInfo).port}\n`));
} else {
  const handler = admissionHandler('mutate', { injection, sickbayUsername: 'x', maxBodyBytes: 3 << 20, metrics: new Metrics(), log: silentLogger() });
  const server = https.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' }, (req, res) => void handler(req, res));
  server.keepAliveTimeout = 120_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`port ${(server.address() as AddressInfo).port}\n`));
}
