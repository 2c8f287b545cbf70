// The chart in cert-manager mode on the real node, its certificate and CA bundle from a
// real cert-manager (controller and cainjector, built from its Go module), and a renewal
// forced (as `cmctl renew` does) while the API server is admitting pods through sickbay's
// webhook at a steady rate: no admission fails, and the pod serves the new certificate.
import assert from 'node:assert/strict';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import tls from 'node:tls';
import { podReport } from '../../dev/pod-report.js';
import { REAL_NODE } from '../../dev/real-node.js';
import { ANN_INJECTED } from '../../src/core/names.js';
import { waitFor } from '../../src/util/wait.js';
import { type CertManager, startCertManager } from '../support/cert-manager.js';
import { scenario, secs } from '../support/chaos.js';
import { createNamespace, isReady, podsOf, rawApiRequest, startCluster, type TestCluster } from '../support/cluster.js';
import { helm, installOnRealNode } from '../support/helm.js';

const NS = 'sickbay-system';
const RATE = Number(process.env.SICKBAY_CHAOS_RATE ?? 500);
/** AdmissionReviews a second sent straight to the pod, beside the API server's. */
const DIRECT_RATE = Number(process.env.SICKBAY_CHAOS_DIRECT_RATE ?? 300);
const CERT = `/apis/cert-manager.io/v1/namespaces/${NS}/certificates/sickbay-serving`;

describe('certificate renewal by a real cert-manager under load', { timeout: 900_000 }, () => {
  let t: TestCluster;
  let cm: CertManager | undefined;
  let podIP = '';

  before(async () => {
    t = await startCluster({ nodes: 1, realNode: true });
    cm = await startCertManager(t.kc, t.cp.kubeconfigPath, path.join(t.cp.dir, 'logs'));
    await installOnRealNode(t.cp, 'cert-manager');
    const pod = await waitFor('the sickbay serve pod Ready with its cert-manager certificate', async () => {
      const p = (await podsOf(t.core, NS, 'app.kubernetes.io/component=serve')).find((x) => x.spec?.nodeName === REAL_NODE.name);
      return p && isReady(p) ? p : undefined;
    }, { timeoutMs: 240_000, intervalMs: 1000 }).catch(async (err) =>
      assert.fail(`${(err as Error).message}\n${await podReport(t.core, NS, '', t.cp.file('logs/kubelet.log'))}\n${cm?.logs()}`),
    );
    podIP = pod.status!.podIP!;
    await createNamespace(t.core, 'shop', { 'sickbay.io/injection': 'enabled' });
    let last = '';
    await waitFor('pods injected through the Service, trusted by the CA bundle the cainjector wrote', async () => {
      const p = await t.core.createNamespacedPod({ namespace: 'shop', body: { metadata: { generateName: 'probe-' }, spec: { containers: [{ name: 'web', image: 'x', command: ['/app'] }] } }, dryRun: 'All' }).catch((err) => {
        last = String((err as { body?: string }).body ?? err);
        return undefined;
      });
      if (p) last = `admitted: ${JSON.stringify(p.metadata?.annotations)}; warnings?`;
      return p?.metadata?.annotations?.[ANN_INJECTED] === 'true';
    }, { timeoutMs: 120_000, intervalMs: 1000 }).catch(async (err) => {
      const hooks = await rawApiRequest(t.kc, 'GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations');
      const bundles = (JSON.parse(hooks.body).items as { metadata: { name: string }; webhooks: { clientConfig: { caBundle?: string } }[] }[]).map((h) => `${h.metadata.name}: caBundle ${h.webhooks.map((w) => w.clientConfig.caBundle?.length ?? 0).join(',')}`);
      assert.fail(`${(err as Error).message}; last: ${last}; ${bundles.join('; ')}\n${cm?.logs()}`);
    });
  });
  after(async () => {
    if (t) await helm(['uninstall', 'sickbay', '--namespace', NS, '--wait=false'], { KUBECONFIG: t.cp.kubeconfigPath });
    await cm?.stop();
    await t?.stop();
  });

  /** The fingerprint of the certificate the pod serves now. */
  const served = () =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: podIP, port: 8443, rejectUnauthorized: false, servername: `sickbay.${NS}.svc` }, () => {
        resolve(s.getPeerCertificate().fingerprint256);
        s.end();
      });
      s.setTimeout(5_000, () => s.destroy(new Error('no TLS handshake within 5 s')));
      s.on('error', reject);
    });
  const secretCert = async () => (await t.core.readNamespacedSecret({ name: 'sickbay-tls', namespace: NS })).data?.['tls.crt'] ?? '';

  scenario('certificate renewed by a real cert-manager under load', {
    load: `pod creations (server-side dry run) through the API server at ${RATE}/s target, and AdmissionReviews straight to the pod at ${DIRECT_RATE}/s; 1 replica on the real node`,
    fault: 'the serving certificate renewed (new key) by cert-manager, forced as `cmctl renew` does',
    outcome: '0 failed admissions; the pod serves the new certificate without a restart',
  }, async (fig) => {
    const opts: https.RequestOptions = {};
    await t.kc.applyToHTTPSOptions(opts);
    const server = new URL(t.kc.getCurrentCluster()!.server);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 64, ca: opts.ca, cert: opts.cert, key: opts.key });
    const failures: string[] = [];
    let sent = 0;
    let ok = 0;
    const create = (i: number) =>
      new Promise<void>((resolve) => {
        const req = https.request(
          { host: server.hostname, port: server.port, path: '/api/v1/namespaces/shop/pods?dryRun=All', method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c) => (body += c));
            res.on('end', () => {
              let injected = false;
              try {
                injected = res.statusCode === 201 && JSON.parse(body).metadata?.annotations?.[ANN_INJECTED] === 'true';
              } catch {
                // counted below
              }
              if (injected) ok++;
              else failures.push(`#${i}: HTTP ${res.statusCode} ${res.statusCode === 201 ? 'admitted without injection' : body.slice(0, 200)}`);
              resolve();
            });
          },
        );
        req.on('error', (err) => (failures.push(`#${i}: ${err.message}`), resolve()));
        req.end(JSON.stringify({ metadata: { name: `load-${i}` }, spec: { containers: [{ name: 'web', image: 'example.com/web:1', command: ['/app', `--n=${i}`] }] } }));
      });

    // Beside the API server's calls, AdmissionReviews sent straight to the pod (as a
    // second API server would send them), trusting the CA cert-manager issued: together
    // they make the rate sickbay serves through the renewal.
    const ca = Buffer.from((await t.core.readNamespacedSecret({ name: 'sickbay-tls', namespace: NS })).data!['ca.crt']!, 'base64').toString();
    const direct = new https.Agent({ keepAlive: true, maxSockets: 16, ca });
    let directOk = 0;
    const review = (i: number) =>
      new Promise<void>((resolve) => {
        const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: `u-${i}`, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', operation: 'CREATE', userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' }, object: { metadata: { name: `direct-${i}`, namespace: 'shop' }, spec: { containers: [{ name: 'web', image: 'example.com/web:1', command: ['/app'] }] } } } });
        const req = https.request({ host: podIP, port: 8443, path: '/mutate', method: 'POST', agent: direct, servername: `sickbay.${NS}.svc`, headers: { 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => {
            let patched = false;
            try {
              patched = res.statusCode === 200 && !!JSON.parse(text).response?.patch;
            } catch {
              // counted below
            }
            if (patched) directOk++;
            else failures.push(`direct #${i}: HTTP ${res.statusCode} ${text.slice(0, 200)}`);
            resolve();
          });
        });
        req.on('error', (err) => (failures.push(`direct #${i}: ${err.message}`), resolve()));
        req.end(body);
      });

    let running = true;
    const startedAt = Date.now();
    /** Sends at `rate` a second until `running` turns false, at most 512 in flight. */
    const pace = async (rate: number, send: (i: number) => Promise<void>) => {
      const pending = new Set<Promise<void>>();
      let n = 0;
      while (running) {
        const due = Math.floor(((Date.now() - startedAt) / 1000) * rate);
        while (n < due && pending.size < 512) {
          const p: Promise<void> = send(n++).finally(() => pending.delete(p));
          pending.add(p);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      await Promise.all(pending);
    };
    const load = Promise.all([pace(RATE, (i) => (sent++, create(i))), pace(DIRECT_RATE, review)]);

    const before = { secret: await secretCert(), served: await served() };
    await new Promise((r) => setTimeout(r, 5_000));
    const cert = JSON.parse((await rawApiRequest(t.kc, 'GET', CERT)).body) as { status?: { conditions?: object[] } };
    const renewAt = Date.now();
    const forced = await rawApiRequest(t.kc, 'PATCH', `${CERT}/status`, {
      status: { conditions: [...(cert.status?.conditions ?? []), { type: 'Issuing', status: 'True', reason: 'ManuallyTriggered', message: 'renewal forced by the fault suite', lastTransitionTime: new Date().toISOString() }] },
    }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(forced.status, 200, forced.body);
    await waitFor('cert-manager to issue a new certificate', async () => (await secretCert()) !== before.secret, { timeoutMs: 60_000, intervalMs: 250 }).catch((err) => assert.fail(`${(err as Error).message}\n${cm?.logs()}`));
    fig('issued after', secs(Date.now() - renewAt));
    await waitFor('the pod to serve the new certificate', async () => (await served().catch(() => before.served)) !== before.served, { timeoutMs: 120_000, intervalMs: 250 });
    fig('served by the pod after', secs(Date.now() - renewAt));
    await new Promise((r) => setTimeout(r, 5_000));
    running = false;
    await load;
    agent.destroy();
    direct.destroy();
    const took = (Date.now() - startedAt) / 1000;
    const rate = (n: number) => `${(n / took).toFixed(0)}/s`;
    fig('through the API server', `${sent} in ${took.toFixed(1)} s (${rate(sent)})`);
    fig('straight to the pod', `${directOk} (${rate(directOk)})`);
    fig('sickbay served', rate(ok + directOk));
    fig('failed', failures.length);
    const restarts = (await podsOf(t.core, NS, 'app.kubernetes.io/component=serve')).flatMap((p) => p.status?.containerStatuses ?? []).reduce((n, c) => n + c.restartCount, 0);
    fig('container restarts', restarts);
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} admissions failed`);
    assert.equal(restarts, 0);
  }, { timeout: 400_000 });
});
