// Self-managed certificates whose CA rotates: a `sickbay serve` process with its CA and
// serving certificate made in the cluster (SICKBAY_TLS_SECRET), a CA of a two-minute life,
// and pods created through the API server (server-side dry run) the whole time. The API
// server verifies sickbay against the webhook configurations' CA bundle, which sickbay
// keeps in line with its Secret: the new CA must be trusted before any certificate it
// signs is served, and the old one until nothing it signed is.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { AdmissionregistrationV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { caBundleSyncRules, servingSecretRules } from '../../src/core/rbac.js';
import { freePorts } from '../../dev/control-plane.js';
import { registerWebhooks, unregisterWebhooks } from '../../dev/local-install.js';
import { ANN_INJECTED } from '../../src/core/names.js';
import { ANN_CA_ROTATED_AT, parseBundle } from '../../src/tls/serving-secret.js';
import { sleep, waitFor } from '../../src/util/wait.js';
import { scenario, secs } from '../support/chaos.js';
import { createNamespace, startCluster, type TestCluster } from '../support/cluster.js';
import { request } from '../support/https.js';
import { SICKBAY_NS, SICKBAY_SA, type SickbayProcess, spawnSickbay } from '../support/sickbay.js';

const ns = 'rotation';
const SECRET = 'sickbay-tls';

describe('self-managed certificates through a CA rotation', { timeout: 600_000 }, () => {
  let t: TestCluster;
  let proc: SickbayProcess | undefined;
  let dir: string | undefined;

  before(async () => {
    t = await startCluster({ nodes: 1 });
    await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
  });
  after(async () => {
    proc?.kill('SIGKILL');
    await proc?.exited;
    if (t) await unregisterWebhooks(t.kc);
    await t?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  scenario('a CA with a 2-minute life rotated under load', {
    load: 'pod creations through the API server (server-side dry run), about 10 a second, for 150 s; 1 replica, self-managed certificates, CA and serving certificate of a 2-minute life',
    fault: "the CA's end: a new CA made halfway through the old one's life, the serving certificate moved to it after an overlap, the old CA dropped when it ends",
    outcome: 'every pod admitted through the webhook (injected); both CAs trusted during the overlap; the pod serves the new certificate without a restart; the expiry metric follows',
  }, async (fig) => {
    // Beyond installIdentity's rules: the serving Secret and the CA bundle, as the chart grants them in this mode.
    const rbac = t.kc.makeApiClient(RbacAuthorizationV1Api);
    const subjects = [{ kind: 'ServiceAccount', name: SICKBAY_SA, namespace: SICKBAY_NS }];
    await rbac.createClusterRole({ body: { metadata: { name: 'sickbay-rotation-test' }, rules: caBundleSyncRules('sickbay') } });
    await rbac.createClusterRoleBinding({ body: { metadata: { name: 'sickbay-rotation-test' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'sickbay-rotation-test' }, subjects } });
    await t.core.createNamespace({ body: { metadata: { name: SICKBAY_NS } } }).catch(() => undefined);
    await rbac.createNamespacedRole({ namespace: SICKBAY_NS, body: { metadata: { name: 'sickbay-rotation-test' }, rules: servingSecretRules(SECRET) } });
    await rbac.createNamespacedRoleBinding({ namespace: SICKBAY_NS, body: { metadata: { name: 'sickbay-rotation-test' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sickbay-rotation-test' }, subjects } });

    const started = Date.now();
    dir = mkdtempSync(path.join(tmpdir(), 'sickbay-rotation-'));
    const [port] = (await freePorts(1)) as [number];
    proc = await spawnSickbay(t, 'rotation', {
      SICKBAY_TLS_CA: path.join(dir, 'ca.crt'),
      SICKBAY_CONTROLLERS: 'false',
      SICKBAY_LEADER_ELECTION: 'false',
      SICKBAY_LOG_LEVEL: 'info',
      SICKBAY_TLS_SECRET: SECRET,
      SICKBAY_TLS_DNS_NAMES: 'localhost',
      SICKBAY_TLS_IP_ADDRESSES: '127.0.0.1',
      SICKBAY_TLS_VALIDITY_DAYS: String(2 / 1440),
      SICKBAY_CA_BUNDLE_SYNC: 'true',
      SICKBAY_WEBHOOK_CONFIGURATION: 'sickbay',
    }, { dir, port });
    const p = proc;
    const secretCa = async () => Buffer.from((await t.core.readNamespacedSecret({ name: SECRET, namespace: SICKBAY_NS })).data!['ca.crt']!, 'base64').toString();
    const firstCa = await waitFor('the Secret sickbay makes', () => secretCa().catch(() => undefined), { timeoutMs: 30_000 });
    // The webhooks registered with that CA, as the chart leaves them for sickbay to fill.
    await registerWebhooks(t.kc, { url: p.url, caPem: firstCa, ownNamespace: SICKBAY_NS });
    await waitFor('sickbay ready', async () => (await request(p.port, firstCa, '/readyz', { method: 'GET' }).catch(() => undefined))?.status === 200, { timeoutMs: 60_000 });

    const adm = t.kc.makeApiClient(AdmissionregistrationV1Api);
    let created = 0;
    let notInjected = 0;
    let refused = 0;
    const errors: string[] = [];
    let maxTrusted = 0;
    let rotatedAt: number | undefined;
    let movedAt: number | undefined;
    const servedIssuers = new Set<string>();
    let running = true;
    const load = (async () => {
      for (let i = 0; running; i++) {
        try {
          const pod = await t.core.createNamespacedPod({ namespace: ns, dryRun: 'All', body: { metadata: { name: `p-${i}` }, spec: { containers: [{ name: 'app', image: 'example.com/app:1', command: ['/app'] }] } } });
          created++;
          if (pod.metadata?.annotations?.[ANN_INJECTED] === undefined) notInjected++;
        } catch (err) {
          refused++;
          if (errors.length < 5) errors.push(String((err as { body?: string }).body ?? err).slice(0, 300));
        }
        await sleep(100);
      }
    })();
    // The API server keeps its connections to sickbay open (keep-alive), so its handshakes
    // are few: a new connection every 250 ms, verified against the bundle the webhooks hold
    // at that moment, is what each of its next handshakes would meet.
    let handshakes = 0;
    const untrusted: string[] = [];
    const watch = (async () => {
      while (running) {
        const caBundle = Buffer.from((await adm.readMutatingWebhookConfiguration({ name: 'sickbay' })).webhooks![0]!.clientConfig.caBundle ?? '', 'base64').toString();
        const bundle = parseBundle(caBundle);
        maxTrusted = Math.max(maxTrusted, bundle.length);
        for (let k = 0; k < 4; k++) {
          const ok = await new Promise<string>((resolve) => {
            const socket = tls.connect({ host: '127.0.0.1', port: p.port, ca: caBundle, servername: 'localhost' }, () => {
              socket.end();
              resolve('');
            });
            socket.on('error', (err) => resolve(err.message));
          });
          handshakes++;
          if (ok && untrusted.length < 5) untrusted.push(`${secs(Date.now() - started)}: ${ok}`);
          await sleep(250);
        }
        const secret = await t.core.readNamespacedSecret({ name: SECRET, namespace: SICKBAY_NS });
        const at = Date.parse(secret.metadata?.annotations?.[ANN_CA_ROTATED_AT] ?? '');
        if (!Number.isNaN(at)) rotatedAt ??= at;
        // What the pod serves: the certificate's issuer key, told apart by the CA that verifies it.
        const served = readFileSync(`${p.dir}/tls.crt`, 'utf8');
        const leaf = new X509Certificate(served);
        const cas = parseBundle(Buffer.from(secret.data!['ca.crt']!, 'base64').toString());
        const issuer = cas.findIndex((c) => leaf.verify(c.publicKey));
        servedIssuers.add(cas[issuer]?.fingerprint256 ?? 'unknown');
        if (rotatedAt && issuer === 0 && cas.length > 1) movedAt ??= Date.now();
      }
    })();
    await sleep(150_000);
    running = false;
    await Promise.all([load, watch]);
    const metrics = (await request(p.port, await secretCa(), '/metrics', { method: 'GET' })).body;
    const caEnd = Number(/^sickbay_certificate_expiry_timestamp_seconds\{certificate="ca"\} (\S+)$/m.exec(metrics)?.[1]);
    fig('pods created', `${created} in ${secs(Date.now() - started)}`);
    fig('not injected', notInjected);
    fig('refused', refused);
    fig('CA rotated after', rotatedAt ? secs(rotatedAt - started) : 'never');
    fig('serving certificate moved after', movedAt ? secs(movedAt - started) : 'never');
    fig('CAs trusted at once, at most', maxTrusted);
    fig('new handshakes verified by the webhooks\' bundle', `${handshakes - untrusted.length} of ${handshakes}`);
    fig('issuers served', servedIssuers.size);
    fig('sickbay restarts', 0);
    assert.deepEqual(errors, []);
    assert.deepEqual(untrusted, [], 'a handshake the webhooks\' CA bundle did not trust');
    assert.equal(notInjected, 0, 'every pod admitted through the webhook, none let through by failurePolicy: Ignore');
    assert.ok(created > 500, `${created} pods created`);
    assert.ok(rotatedAt, 'the CA rotated');
    assert.ok(movedAt, 'the serving certificate moved to the new CA');
    assert.ok(maxTrusted >= 2, 'old and new CAs trusted together during the overlap');
    assert.ok(servedIssuers.size >= 2, 'the new certificate was served without a restart');
    assert.ok(caEnd * 1000 > Date.now(), `the expiry metric follows the newest CA (${caEnd})`);
    assert.equal(await Promise.race([p.exited.then(() => 'exited'), sleep(100).then(() => 'running')]), 'running');
  }, { timeout: 400_000 });
});
