// Issue 4 on the real control plane: quarantine, keep-a-few, guards, triggers, expiry,
// release and status.
import assert from 'node:assert/strict';
import https from 'node:https';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CoreV1Api, PatchStrategy, PolicyV1Api, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { SIMULATE_READY_ANNOTATION } from '../../dev/kwok-config.js';
import { Metrics } from '../../src/core/metrics.js';
import { waitFor } from '../../src/util/wait.js';
import { scenario } from '../support/chaos.js';
import { breakPod, createNamespace, createWebApp, eventsOf, failTogether, isReady, podsOf, readyEndpoints, startCluster, startKubelet, stopKubelet, type TestCluster } from '../support/cluster.js';
import { request } from '../support/https.js';
import { type RunningSickbay, startSickbay, waitForInjection } from '../support/sickbay.js';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const run = promisify(execFile);
const cli = new URL('../../src/cli.ts', import.meta.url).pathname;
const ns = 'shop';
const TOKEN = 'test-alert-token';

describe('pod isolation controller', { timeout: 600_000 }, () => {
  let t: TestCluster;
  let sickbay: RunningSickbay;
  const metrics = new Metrics();

  const breakOne = (name: string) => breakPod(t, ns, name);
  const readyPods = async (app: string, n: number) =>
    waitFor(`${n} ready pods of ${app}`, async () => {
      const ps = (await podsOf(t.core, ns, `app=${app}`)).filter((p) => !p.metadata?.deletionTimestamp);
      return ps.length === n && ps.every(isReady) ? ps : undefined;
    });
  const quarantinedPods = async () => podsOf(t.core, ns, 'sickbay.io/status=quarantined');
  const eventsFor = async (name: string) => eventsOf(t, ns, { name });

  before(async () => {
    t = await startCluster({ nodes: 3 });
    sickbay = await startSickbay(
      t,
      { SICKBAY_CONTROLLERS: 'true', SICKBAY_NOT_READY_GRACE: '500ms', SICKBAY_ALERTS_TOKEN: TOKEN, SICKBAY_ALERTS_RATE_PER_MINUTE: '6', SICKBAY_RESYNC: '30s' },
      { metrics },
    );
    await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled', 'sickbay.io/alerts': 'enabled' });
  });
  after(async () => {
    await sickbay?.stop();
    await t?.stop();
  });

  it('quarantines a pod that turns NotReady: marks it, strips its selector labels, keeps it, replaces it', async () => {
    await createWebApp(t, ns, 'web', 3);
    const pods = await readyPods('web', 3);
    await waitFor('3 endpoints', async () => (await readyEndpoints(t.discovery, ns, 'web')).length === 3);
    const victim = pods[0]!;
    const name = victim.metadata!.name!;
    const started = Date.now();
    await breakOne(name);
    const q = await waitFor(
      'the pod quarantined',
      async () => {
        const p = await t.core.readNamespacedPod({ name, namespace: ns });
        return p.metadata?.labels?.['sickbay.io/status'] === 'quarantined' ? p : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    const took = Date.now() - started;
    assert.ok(took < 2000 + 500, `quarantined ${took} ms after NotReady (grace 500 ms)`);
    const labels = q.metadata!.labels!;
    assert.equal(labels.app, undefined, 'the Service/ReplicaSet selector label is gone');
    assert.equal(labels['pod-template-hash'], undefined);
    assert.equal(labels.tier, 'web', 'labels no selector uses are kept');
    const ann = q.metadata!.annotations!;
    assert.deepEqual(JSON.parse(ann['sickbay.io/original-labels']!), { app: 'web', 'pod-template-hash': victim.metadata!.labels!['pod-template-hash'] });
    assert.equal(ann['sickbay.io/owner'], 'Deployment/web');
    assert.match(ann['sickbay.io/reason']!, /NotReady/);
    assert.ok(Date.parse(ann['sickbay.io/expires-at']!) - Date.parse(ann['sickbay.io/quarantined-at']!) === 24 * 3600 * 1000);
    assert.equal(q.status!.phase, 'Running', 'the pod keeps running');

    await waitFor('the old address gone from the EndpointSlice', async () => !(await readyEndpoints(t.discovery, ns, 'web')).includes(victim.status!.podIP!));
    const replacements = await readyPods('web', 3);
    assert.ok(!replacements.some((p) => p.metadata!.name === name));
    const d = await t.apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    await waitFor('the Deployment back to 3 ready', async () => ((await t.apps.readNamespacedDeployment({ name: 'web', namespace: ns })).status?.readyReplicas ?? 0) === 3);
    assert.equal(d.spec!.replicas, 3);
    await waitFor('Events on the pod and the Deployment', async () => {
      const onPod = (await eventsFor(name)).some((e) => e.reason === 'Quarantined');
      const onDeploy = (await eventsFor('web')).some((e) => e.reason === 'PodQuarantined');
      return onPod && onDeploy;
    });
    const events = await sickbay.handle.metrics.registry.getSingleMetricAsString('sickbay_events_total');
    assert.ok(Number(/result="written"\} (\d+)/.exec(events)?.[1]) >= 2, events);
  });

  it('deletes a second failing pod of the same Deployment (keeps 1), keeps it when the annotation says 2', async () => {
    const pods = await readyPods('web', 3);
    const second = pods[0]!.metadata!.name!;
    await breakOne(second);
    await waitFor('the second failing pod deleted', async () => !(await podsOf(t.core, ns, '')).some((p) => p.metadata!.name === second), { timeoutMs: 10_000 });
    assert.equal((await quarantinedPods()).length, 1, 'still one quarantined');
    await waitFor('an Event saying why', async () => (await eventsFor('web')).some((e) => e.reason === 'FailingPodDeleted'));

    await t.apps.patchNamespacedDeployment({ name: 'web', namespace: ns, body: { metadata: { annotations: { 'sickbay.io/max-quarantined': '2' } } } }, mergePatch);
    // The controller reads the annotation from its informer cache; give the watch a moment.
    await new Promise((r) => setTimeout(r, 500));
    const third = (await readyPods('web', 3))[0]!.metadata!.name!;
    await breakOne(third);
    await waitFor('the third failing pod quarantined', async () => (await quarantinedPods()).some((p) => p.metadata!.name === third), { timeoutMs: 10_000 });
    assert.equal((await quarantinedPods()).length, 2);
  });

  /**
   * `broken` of a new Deployment's `replicas` pods NotReady, presented to sickbay as one
   * simultaneous failure: kwok applies NotReady to several pods up to seconds apart under
   * load, so they are broken before their namespace opts in. Returns their names.
   */
  it('two pods of one Deployment failing at the same moment: one quarantined, one deleted, never two kept', async () => {
    const pair = 'pair';
    const broken = await failTogether(t, pair, 'duo', 6, 2);
    await waitFor('one kept, one deleted', async () => {
      const names = (await podsOf(t.core, pair, '')).filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata!.name!);
      return broken.filter((n) => names.includes(n)).length === 1;
    }, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 1000));
    const kept = (await podsOf(t.core, pair, 'sickbay.io/status=quarantined')).map((p) => p.metadata!.name);
    assert.equal(kept.length, 1, `quarantined: ${kept.join(', ')}`);
    assert.ok(broken.includes(kept[0]!));
    // The status test below counts every quarantined pod in the cluster.
    await t.core.deleteNamespacedPod({ name: kept[0]!, namespace: pair, gracePeriodSeconds: 0 });
    await waitFor('the kept pod gone', async () => !(await podsOf(t.core, pair, '')).some((p) => p.metadata!.name === kept[0]));
  });

  it('counts isolation requests as failures: a request naming a whole Deployment keeps one scene and deletes none', async () => {
    const nsr = 'requests';
    await createNamespace(t.core, nsr, { 'sickbay.io/injection': 'enabled' });
    await createWebApp(t, nsr, 'orders', 3);
    const pods = await waitFor('3 ready orders pods', async () => {
      const ps = await podsOf(t.core, nsr, 'app=orders');
      return ps.length === 3 && ps.every(isReady) ? ps : undefined;
    });
    const names = pods.map((p) => p.metadata!.name!);
    // One alert group naming all three, as the alert endpoint records it.
    await Promise.all(names.map((name) => t.core.patchNamespacedPod({ name, namespace: nsr, body: { metadata: { annotations: { 'sickbay.io/isolate': 'alert: HighLatency' } } } }, mergePatch)));
    await waitFor('one of them quarantined', async () => (await podsOf(t.core, nsr, 'sickbay.io/status=quarantined')).length === 1);
    await waitFor('a SystemicFailure Event', async () => (await eventsOf(t, nsr, { name: 'orders' })).some((e) => e.reason === 'SystemicFailure'));
    await new Promise((r) => setTimeout(r, 1500));
    const left = (await podsOf(t.core, nsr, '')).map((p) => p.metadata!.name!);
    for (const n of names) assert.ok(left.includes(n), `${n} was not deleted`);
    assert.equal((await podsOf(t.core, nsr, 'sickbay.io/status=quarantined')).length, 1);
  });

  it('a failing pod beyond the quota leaves by eviction: a PodDisruptionBudget that allows none keeps it, with an Event', async () => {
    const nsb = 'budget';
    await createNamespace(t.core, nsb, { 'sickbay.io/injection': 'enabled' });
    await createWebApp(t, nsb, 'pay', 4);
    await t.kc.makeApiClient(PolicyV1Api).createNamespacedPodDisruptionBudget({ namespace: nsb, body: { metadata: { name: 'pay' }, spec: { minAvailable: 4, selector: { matchLabels: { app: 'pay' } } } } });
    const inService = () => podsOf(t.core, nsb, 'app=pay');
    const fourReady = () => waitFor('4 ready pay pods', async () => ((ps) => (ps.length === 4 && ps.every(isReady) ? ps : undefined))(await inService()));
    const [first] = await fourReady();
    const brk = (name: string) => breakPod(t, nsb, name);
    await brk(first!.metadata!.name!);
    await waitFor('the first failing pod quarantined (the quota of 1)', async () => (await podsOf(t.core, nsb, 'sickbay.io/status=quarantined')).length === 1);
    const second = (await fourReady()).find((p) => p.metadata!.name !== first!.metadata!.name)!;
    // The budget's status lags its pods (the disruption controller's resync): break the
    // second pod only once it says no disruption is allowed with the four in service,
    // or an eviction may pass on a stale count.
    const pdbs = t.kc.makeApiClient(PolicyV1Api);
    const budget = () => pdbs.readNamespacedPodDisruptionBudget({ name: 'pay', namespace: nsb });
    await waitFor('the budget at 4 healthy, none allowed', async () => ((b) => b.status?.currentHealthy === 4 && b.status.disruptionsAllowed === 0)(await budget()));
    await brk(second.metadata!.name!);
    await waitFor('an EvictionRefused Event on the second', async () =>
      (await eventsOf(t, nsb, { name: second.metadata!.name })).some((e) => e.reason === 'EvictionRefused'),
    ).catch(async (err) => {
      const pod = await t.core.readNamespacedPod({ name: second.metadata!.name!, namespace: nsb }).catch(() => undefined);
      assert.fail(`${(err as Error).message}; the pod ${pod ? `is there (deleting: ${!!pod.metadata?.deletionTimestamp})` : 'is gone'}; budget ${JSON.stringify((await budget()).status)}`);
    });
    const still = await t.core.readNamespacedPod({ name: second.metadata!.name!, namespace: nsb });
    assert.ok(!still.metadata?.deletionTimestamp, 'the budget kept it');
    assert.match(await sickbay.handle.metrics.registry.getSingleMetricAsString('sickbay_quarantine_skips_total'), /reason="disruption-budget"\} [1-9]/);
  });

  it('quarantines a Ready pod on the sickbay.io/isolate annotation', async () => {
    await createWebApp(t, ns, 'cart', 2);
    const [pod] = await readyPods('cart', 2);
    const name = pod!.metadata!.name!;
    await t.core.patchNamespacedPod({ name, namespace: ns, body: { metadata: { annotations: { 'sickbay.io/isolate': 'memory leak, keep for a heap dump' } } } }, mergePatch);
    const q = await waitFor('quarantined', async () => {
      const p = await t.core.readNamespacedPod({ name, namespace: ns });
      return p.metadata?.labels?.['sickbay.io/status'] === 'quarantined' ? p : undefined;
    });
    assert.equal(q.metadata!.annotations!['sickbay.io/reason'], 'memory leak, keep for a heap dump');
    await readyPods('cart', 2);
  });

  it('quarantines a pod named by an Alertmanager webhook; refuses a wrong token and a malformed payload; reports an unknown pod', async () => {
    await createWebApp(t, ns, 'search', 2);
    const [pod] = await readyPods('search', 2);
    const name = pod!.metadata!.name!;
    const caPem = readFileSync(`${sickbay.certDir}/ca.crt`, 'utf8');
    const payload = {
      version: '4',
      status: 'firing',
      receiver: 'sickbay',
      groupKey: '{}:{alertname="HighErrorRate"}',
      alerts: [
        { status: 'firing', labels: { alertname: 'HighErrorRate', namespace: ns, pod: name }, annotations: { summary: '50% 5xx' }, startsAt: new Date().toISOString() },
        { status: 'firing', labels: { alertname: 'HighErrorRate', namespace: ns, pod: 'no-such-pod' }, annotations: {} },
      ],
    };
    const post = (body: string, token = TOKEN) => request(sickbay.handle.port, caPem, '/alerts', { body, headers: { authorization: `Bearer ${token}` } });
    assert.equal((await post(JSON.stringify(payload), 'wrong')).status, 401);
    const bad = await post(JSON.stringify({ alerts: 'nope' }));
    assert.equal(bad.status, 400);
    assert.match(bad.json().error, /not an Alertmanager webhook payload: alerts/);
    assert.equal((await post('{not json')).status, 400);
    const res = await post(JSON.stringify(payload));
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.json().results.map((r: { pod: string; result: string }) => [r.pod, r.result]),
      [
        [name, 'requested'],
        ['no-such-pod', 'not-found'],
      ],
    );
    const q = await waitFor('quarantined', async () => {
      const p = await t.core.readNamespacedPod({ name, namespace: ns });
      return p.metadata?.labels?.['sickbay.io/status'] === 'quarantined' ? p : undefined;
    });
    assert.match(q.metadata!.annotations!['sickbay.io/reason']!, /^alert HighErrorRate \(firing since \d{4}-\d\d-\d\dT[\d:.]+Z\): 50% 5xx/);
  });

  it("/alerts acts only where a namespace opted in to alerts, never on a bare pod, and a resolved alert withdraws its own pending request (issue 31)", async () => {
    const caPem = readFileSync(`${sickbay.certDir}/ca.crt`, 'utf8');
    const post = (alerts: unknown[]) => request(sickbay.handle.port, caPem, '/alerts', { body: JSON.stringify({ version: '4', alerts }), headers: { authorization: `Bearer ${TOKEN}` } });
    const results = async (alerts: unknown[]) => ((await post(alerts)).json().results as Array<{ result: string; message?: string }>);
    // Another team's namespace, opted in to sickbay but not to alerts.
    const other = 'tenant-b';
    await createNamespace(t.core, other, { 'sickbay.io/injection': 'enabled' });
    await createWebApp(t, other, 'ledger', 2);
    const ledger = await waitFor('ledger pods Ready', async () => {
      const ps = (await podsOf(t.core, other, 'app=ledger')).filter((p) => isReady(p));
      return ps.length === 2 ? ps : undefined;
    });
    // A bare pod in a namespace that allows alerts: nothing would replace it.
    await t.core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'bare-one', labels: { app: 'bare' } }, spec: { containers: [{ name: 'app', image: 'example.com/app:1' }] } } });
    await new Promise((r) => setTimeout(r, 1_000)); // the watch delivers it to sickbay's cache
    // The suite's /alerts allows 6 requests a minute: this test makes three, and gives them back at its end.
    const firstPostAt = Date.now();
    const now = new Date().toISOString();
    const [cross, bare] = await results([
      { status: 'firing', labels: { alertname: 'Errors', namespace: other, pod: ledger[0]!.metadata!.name! }, startsAt: now },
      { status: 'firing', labels: { alertname: 'Errors', namespace: ns, pod: 'bare-one' }, startsAt: now },
    ]);
    assert.equal(cross!.result, 'not-allowed');
    assert.match(cross!.message!, /not labelled sickbay\.io\/alerts=enabled/);
    assert.equal(bare!.result, 'not-allowed');
    assert.match(bare!.message!, /a bare pod: nothing would replace it/);
    for (const [namespace, name] of [[other, ledger[0]!.metadata!.name!], [ns, 'bare-one']] as Array<[string, string]>) {
      const p = await t.core.readNamespacedPod({ name, namespace });
      assert.equal(p.metadata?.annotations?.['sickbay.io/isolate'], undefined, `${namespace}/${name}: no request written`);
      assert.notEqual(p.metadata?.labels?.['sickbay.io/status'], 'quarantined');
    }
    // Requests sickbay holds back: three of four pods named at once is systemic, so it
    // keeps the scene of one and acts on the other two not at all. When their alert
    // resolves, those two requests are withdrawn (they would count the pods as failing).
    await createWebApp(t, ns, 'pricing', 4);
    const pricing = await readyPods('pricing', 4);
    const startsAt = '2026-12-01T10:00:00.000Z';
    const firing = pricing.slice(0, 3).map((p) => ({ status: 'firing', labels: { alertname: 'Latency', namespace: ns, pod: p.metadata!.name! }, startsAt }));
    assert.deepEqual((await results(firing)).map((r) => r.result), ['requested', 'requested', 'requested']);
    await waitFor('the systemic skip', async () => (await eventsOf(t, ns, { name: 'pricing' })).some((e) => e.reason === 'SystemicFailure'));
    const now1 = await Promise.all(pricing.slice(0, 3).map((p) => t.core.readNamespacedPod({ name: p.metadata!.name!, namespace: ns })));
    const pending = now1.filter((p) => p.metadata?.labels?.['sickbay.io/status'] !== 'quarantined');
    assert.equal(pending.length, 2, 'one scene kept, two held back');
    const target = pending[0]!.metadata!.name!;
    assert.equal(pending[0]!.metadata!.annotations!['sickbay.io/isolate'], `alert Latency (firing since ${startsAt})`);
    // A resolved alert of another name, or of an earlier firing, withdraws nothing.
    // In one payload: a resolved alert of another name, and one of an earlier firing, withdraw
    // nothing; the three of this firing withdraw the two requests still pending.
    const answers = await results([
      { status: 'resolved', labels: { alertname: 'Errors', namespace: ns, pod: target }, startsAt },
      { status: 'resolved', labels: { alertname: 'Latency', namespace: ns, pod: target }, startsAt: '2026-11-30T10:00:00.000Z' },
      ...firing.map((a) => ({ ...a, status: 'resolved' })),
    ]);
    assert.deepEqual(answers.slice(0, 2).map((r) => r.result), ['ignored', 'ignored']);
    assert.deepEqual(answers.slice(2).map((r) => r.result).sort(), ['ignored', 'withdrawn', 'withdrawn'], 'the quarantined one is left as it is');
    for (const p of pending) {
      const after = await t.core.readNamespacedPod({ name: p.metadata!.name!, namespace: ns });
      assert.equal(after.metadata?.annotations?.['sickbay.io/isolate'], undefined, 'the request is gone');
      assert.notEqual(after.metadata?.labels?.['sickbay.io/status'], 'quarantined');
    }
    // The three requests back (10 s each) before the next test counts the rate limit.
    await new Promise((r) => setTimeout(r, Math.max(0, firstPostAt + 31_000 - Date.now())));
  });

  it('/alerts: one write for a pod named by 300 alerts, UTF-8 split across chunks kept whole, a hung API server answered in bounded time, a rate limit with 429', async () => {
    await createWebApp(t, ns, 'catalog', 3);
    const [first, second] = await readyPods('catalog', 3);
    const caPem = readFileSync(`${sickbay.certDir}/ca.crt`, 'utf8');
    const summary = 'Fehlerquote überhöht — 50 %';
    const alert = (pod: string) => ({ status: 'firing', labels: { alertname: 'Überlast', namespace: ns, pod }, annotations: { summary } });
    const body = Buffer.from(JSON.stringify({ version: '4', alerts: Array.from({ length: 300 }, () => alert(first!.metadata!.name!)) }));
    // Sent in two writes split inside the two bytes of the first "Ü".
    const split = body.indexOf(Buffer.from('Ü')) + 1;
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: sickbay.handle.port, path: '/alerts', method: 'POST', ca: caPem, servername: 'localhost', headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: `Bearer ${TOKEN}` } },
        (r) => {
          let data = '';
          r.setEncoding('utf8');
          r.on('data', (c) => (data += c));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body: data }));
        },
      );
      req.on('error', reject);
      req.write(body.subarray(0, split));
      setTimeout(() => req.end(body.subarray(split)), 100);
    });
    assert.equal(res.status, 200, res.body);
    const results: Array<{ result: string }> = JSON.parse(res.body).results;
    assert.equal(results.filter((r) => r.result === 'requested').length, 1);
    assert.equal(results.filter((r) => r.result === 'already-requested').length, 299);
    const requested = await t.core.readNamespacedPod({ name: first!.metadata!.name!, namespace: ns });
    assert.equal(requested.metadata!.annotations!['sickbay.io/isolate'], `alert Überlast: ${summary}`);

    const post = (payload: unknown) =>
      request(sickbay.handle.port, caPem, '/alerts', { body: JSON.stringify(payload), headers: { authorization: `Bearer ${TOKEN}` } });
    // The API server stops answering: the reply still comes, within the 5 s call timeout.
    const pid = t.cp.pidOf('kube-apiserver')!;
    process.kill(pid, 'SIGSTOP');
    let hung: Awaited<ReturnType<typeof post>>;
    const started = Date.now();
    try {
      hung = await post({ alerts: [alert(second!.metadata!.name!)] });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const took = Date.now() - started;
    assert.equal(hung.status, 200);
    assert.equal(hung.json().results[0].result, 'failed');
    assert.match(hung.json().results[0].message, /did not answer within 5000 ms/);
    assert.ok(took < 8_000, `answered after ${took} ms`);

    // 6 requests a minute: the bucket is empty by now, or after a few more.
    let limited: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 0; i < 4 && !limited; i++) {
      const r = await post({ alerts: [] });
      if (r.status === 429) limited = r;
    }
    assert.ok(limited, 'a 429 once the rate is spent');
    assert.match(limited.json().error, /over 6 requests a minute; retry in \d+ s/);
  });

  it('deletes a quarantined pod once its expiry passes', async () => {
    const [q] = (await quarantinedPods()).filter((p) => p.metadata?.annotations?.['sickbay.io/owner'] === 'Deployment/cart');
    const name = q!.metadata!.name!;
    // Only sickbay may write its marks (the relabel guard): act as sickbay.
    await sickbay.kc
      .makeApiClient(CoreV1Api)
      .patchNamespacedPod({ name, namespace: ns, body: { metadata: { annotations: { 'sickbay.io/expires-at': new Date(Date.now() - 1000).toISOString() } } } }, mergePatch);
    await waitFor('the expired pod deleted', async () => !(await podsOf(t.core, ns, '')).some((p) => p.metadata!.name === name), { timeoutMs: 10_000 });
    await waitFor('an Event', async () => (await eventsFor(name)).some((e) => e.reason === 'QuarantineExpired'));
  });

  it('`sickbay status` lists quarantined pods; `sickbay release` ends a quarantine', async () => {
    const kubeconfig = `${t.cp.dir}/kubeconfig`;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', cli, 'status', '--kubeconfig', kubeconfig]);
    const quarantined = await quarantinedPods();
    const everywhere = (await t.core.listPodForAllNamespaces({ labelSelector: 'sickbay.io/status=quarantined' })).items;
    assert.match(stdout, new RegExp(`Quarantined pods \\(${everywhere.length}\\)`), 'status counts every namespace');
    for (const p of quarantined) assert.ok(stdout.includes(`${ns}/${p.metadata!.name}`), `status lists ${p.metadata!.name}`);
    assert.match(stdout, /Deployment\/web/);

    const target = quarantined.find((p) => p.metadata?.annotations?.['sickbay.io/owner'] === 'Deployment/search')!;
    const rel = await run(process.execPath, ['--import', 'tsx', cli, 'release', `${ns}/${target.metadata!.name}`, '--kubeconfig', kubeconfig]);
    assert.match(rel.stdout, /released/);
    await waitFor('the released pod gone', async () => !(await podsOf(t.core, ns, '')).some((p) => p.metadata!.name === target.metadata!.name));
    const notQ = (await readyPods('search', 2))[0]!.metadata!.name!;
    await assert.rejects(run(process.execPath, ['--import', 'tsx', cli, 'release', `${ns}/${notQ}`, '--kubeconfig', kubeconfig]), /not quarantined/);
  });

  it('a 2-replica Deployment: one pod quarantined and replaced, then the other fails: evicted and replaced within grace + 5 s, back to 2/2 (issue 25)', async () => {
    await createWebApp(t, ns, 'pair2', 2);
    const [first] = await readyPods('pair2', 2);
    await breakOne(first!.metadata!.name!);
    await waitFor('the first pod quarantined', async () => (await quarantinedPods()).some((p) => p.metadata!.name === first!.metadata!.name));
    const [second] = (await readyPods('pair2', 2)).filter((p) => p.metadata!.name !== first!.metadata!.name);
    const broken = Date.now();
    await breakOne(second!.metadata!.name!);
    await waitFor('the second pod evicted', async () => {
      const p = (await podsOf(t.core, ns, '')).find((x) => x.metadata!.uid === second!.metadata!.uid);
      return !p || !!p.metadata?.deletionTimestamp;
    }, { timeoutMs: 500 + 5_000, intervalMs: 50 });
    const evictedAfter = Date.now() - broken;
    await readyPods('pair2', 2);
    assert.ok(evictedAfter <= 5_500, `evicted ${evictedAfter} ms after it failed`);
    const kept = (await quarantinedPods()).filter((p) => p.metadata?.annotations?.['sickbay.io/owner'] === 'Deployment/pair2');
    assert.deepEqual(kept.map((p) => p.metadata!.name), [first!.metadata!.name], 'the first scene is kept');
    assert.ok(!(await eventsFor('pair2')).some((e) => e.reason === 'SystemicFailure'), 'two failures minutes apart, or with a working replacement between, are not systemic');
    await t.core.deleteNamespacedPod({ name: first!.metadata!.name!, namespace: ns, gracePeriodSeconds: 0 });
    await t.apps.deleteNamespacedDeployment({ name: 'pair2', namespace: ns });
  });

  it("a node that stops reporting: its pods are left to the node's verdict (0 quarantines, 0 evictions, an Event saying why) and are Ready again when it is back", async () => {
    await createWebApp(t, ns, 'away', 3);
    const pods = await readyPods('away', 3);
    const node = pods[0]!.spec!.nodeName!;
    const onNode = pods.filter((p) => p.spec!.nodeName === node).map((p) => p.metadata!.name!);
    const uids = new Set(pods.map((p) => p.metadata!.uid!));
    // The kubelet stops (kwok leaves the node's status to what kube-controller-manager writes).
    await stopKubelet(t, node);
    try {
      // kube-controller-manager's node lifecycle controller reacts as to a real node: the unreachable taint, its pods NotReady.
      await waitFor('the unreachable taint', async () => (await t.core.readNode({ name: node })).spec?.taints?.some((x) => x.key === 'node.kubernetes.io/unreachable'), { timeoutMs: 20_000 });
      // A dead kubelet does not report its pods Ready again: neither does kwok now.
      for (const name of onNode) await breakOne(name);
      await waitFor("the node's pods NotReady", async () => {
        const ps = (await podsOf(t.core, ns, 'app=away')).filter((p) => p.spec!.nodeName === node);
        return ps.length === onNode.length && ps.every((p) => !isReady(p));
      }, { timeoutMs: 20_000 });
      await waitFor('a WaitingForNode Event', async () => (await eventsFor(onNode[0]!)).some((e) => e.reason === 'WaitingForNode' && e.message?.includes(node)), { timeoutMs: 10_000 });
      // Well past the grace period (500 ms): nothing quarantined, nothing evicted.
      await new Promise((r) => setTimeout(r, 4_000));
      const during = await podsOf(t.core, ns, 'app=away');
      assert.deepEqual(during.filter((p) => p.spec!.nodeName === node).map((p) => p.metadata!.name).sort(), [...onNode].sort(), 'its pods are all still there');
      assert.ok(during.every((p) => !p.metadata?.deletionTimestamp && !p.metadata?.labels?.['sickbay.io/status']));
      assert.match(await sickbay.handle.metrics.registry.getSingleMetricAsString('sickbay_quarantine_skips_total'), /reason="node-away"\} [1-9]/);
    } finally {
      // The kubelet is back: kwok reports the node Ready again, and its pods.
      await startKubelet(t, node);
      for (const name of onNode) await t.core.patchNamespacedPod({ name, namespace: ns, body: { metadata: { annotations: { [SIMULATE_READY_ANNOTATION]: null } } } }, mergePatch);
    }
    const back = await readyPods('away', 3);
    await new Promise((r) => setTimeout(r, 2_000));
    const after = await podsOf(t.core, ns, 'app=away');
    assert.deepEqual(new Set(after.map((p) => p.metadata!.uid!)), uids, 'the same three pods, none replaced');
    assert.ok(back.every(isReady) && after.every((p) => !p.metadata?.labels?.['sickbay.io/status']));
    await t.apps.deleteNamespacedDeployment({ name: 'away', namespace: ns });
  });

  it('backs off a workload whose replacements keep failing: after K actions in the window it stops, and says so', async () => {
    await sickbay.stop();
    const backoffMetrics = new Metrics();
    sickbay = await startSickbay(t, { SICKBAY_CONTROLLERS: 'true', SICKBAY_NOT_READY_GRACE: '500ms', SICKBAY_BACKOFF_AFTER: '3', SICKBAY_BACKOFF_WINDOW: '10m', SICKBAY_QUARANTINE_TTL: 'never' }, { metrics: backoffMetrics });
    const nsf = 'flaky';
    await createNamespace(t.core, nsf, { 'sickbay.io/injection': 'enabled' });
    await createWebApp(t, nsf, 'crashy', 6);
    const sixReady = () =>
      waitFor('6 ready crashy pods', async () => ((ps) => (ps.length === 6 && ps.every(isReady) ? ps : undefined))(await podsOf(t.core, nsf, 'app=crashy')), { timeoutMs: 30_000 });
    const brk = (name: string) => breakPod(t, nsf, name);
    // One failure at a time (never systemic): quarantined, then evicted, evicted.
    for (let i = 0; i < 3; i++) {
      const victim = (await sixReady())[0]!.metadata!.name!;
      await brk(victim);
      await waitFor(`action ${i + 1} on ${victim}`, async () => {
        const p = (await podsOf(t.core, nsf, '')).find((x) => x.metadata!.name === victim);
        return !p || !!p.metadata?.deletionTimestamp || p.metadata?.labels?.['sickbay.io/status'] === 'quarantined';
      });
    }
    // SICKBAY_QUARANTINE_TTL=never: the scene is kept until a release (issue 27).
    const [kept] = await podsOf(t.core, nsf, 'sickbay.io/status=quarantined');
    assert.equal(kept?.metadata?.annotations?.['sickbay.io/expires-at'], 'never');
    const fourth = (await sixReady())[0]!.metadata!.name!;
    await brk(fourth);
    await waitFor('a WorkloadBackOff Event on the Deployment', async () =>
      (await eventsOf(t, nsf, { name: 'crashy' })).some((e) => e.reason === 'WorkloadBackOff' && /3 pods of Deployment\/crashy/.test(e.message ?? '')),
    );
    const still = await t.core.readNamespacedPod({ name: fourth, namespace: nsf });
    assert.ok(!still.metadata?.deletionTimestamp && !still.metadata?.labels?.['sickbay.io/status'], 'the fourth failing pod is left alone');
    assert.match(await backoffMetrics.registry.getSingleMetricAsString('sickbay_quarantine_skips_total'), /reason="backoff"\} [1-9]/);
  });

  it("turns the flight recorder on from the namespace's annotation, as sickbay's cache of it says (issue 27)", async () => {
    await createNamespace(t.core, 'recorded', { 'sickbay.io/injection': 'enabled' });
    await t.core.patchNamespace({ name: 'recorded', body: { metadata: { annotations: { 'sickbay.io/flight-recorder': 'true' } } } }, mergePatch);
    await waitForInjection(t.core, 'recorded');
    const jfr = (p: V1Pod) => p.spec!.containers[0]!.env?.find((e) => e.name === 'SICKBAY_JFR_OPTIONS')?.value;
    // The webhook reads the namespace from its informer: the first pods may come before it saw the annotation.
    let n = 0;
    const pod = await waitFor('a pod created with the recorder on', async () => {
      const p = await t.core.createNamespacedPod({ namespace: 'recorded', body: { metadata: { name: `jvm-${n++}` }, spec: { containers: [{ name: 'app', image: 'jvm', command: ['java', 'App'] }] } } });
      return jfr(p) ? p : undefined;
    }, { timeoutMs: 15_000, intervalMs: 500 });
    assert.match(jfr(pod)!, /-XX:StartFlightRecording=name=sickbay,disk=true,maxage=10m,maxsize=64m/);
    // The pod's own annotation says last.
    const off = await t.core.createNamespacedPod({ namespace: 'recorded', body: { metadata: { name: 'jvm-off', annotations: { 'sickbay.io/flight-recorder': 'false' } }, spec: { containers: [{ name: 'app', image: 'jvm', command: ['java', 'App'] }] } } });
    assert.equal(jfr(off), undefined);
  });

  it('in dry-run mode changes no pod, injects nothing, and writes only Would* Events', async () => {
    await sickbay.stop();
    const dry = new Metrics();
    sickbay = await startSickbay(t, { SICKBAY_CONTROLLERS: 'true', SICKBAY_NOT_READY_GRACE: '500ms', SICKBAY_DRY_RUN: 'true' }, { metrics: dry });
    await createWebApp(t, ns, 'dry', 3);
    const pods = await readyPods('dry', 3);
    assert.equal(pods[0]!.spec!.containers[0]!.command![0], '/app/server', 'the webhook injected nothing');
    assert.ok(!pods[0]!.metadata?.annotations?.['sickbay.io/injected']);
    const name = pods[0]!.metadata!.name!;
    const before: V1Pod = await t.core.readNamespacedPod({ name, namespace: ns });
    await breakOne(name);
    await waitFor('a dry-run skip recorded', async () => /reason="dry-run"\} [1-9]/.test(await dry.registry.getSingleMetricAsString('sickbay_quarantine_skips_total')), {
      timeoutMs: 10_000,
    });
    const would = await waitFor('a WouldQuarantine Event', async () => {
      const mine = (await eventsFor(name)).filter((e) => e.source?.component === 'sickbay');
      return mine.some((e) => e.reason === 'WouldQuarantine') ? mine : undefined;
    });
    assert.deepEqual([...new Set(would.map((e) => e.reason))], ['WouldQuarantine'], 'Would* Events only');
    const after = await t.core.readNamespacedPod({ name, namespace: ns });
    assert.deepEqual(after.metadata!.labels, before.metadata!.labels, 'labels untouched');
    assert.equal(after.metadata!.annotations!['sickbay.io/quarantined-at'], undefined, 'no quarantine annotations');
    const onDeployment = (await eventsFor('dry')).filter((e) => e.source?.component === 'sickbay');
    assert.ok(onDeployment.every((e) => e.reason!.startsWith('Would')), onDeployment.map((e) => e.reason).join(', '));
  });
});

