// Pods that escaped injection (created while the webhook was not there) are reported,
// and with SICKBAY_REPAIR_RESTART their Deployment is restarted once the webhook works.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '../../src/cli/status.js';
import { mergePatch as mergePatchOptions } from '../../src/kube/api.js';
import { Metrics } from '../../src/core/metrics.js';
import { waitFor } from '../../src/util/wait.js';
import { createNamespace, createWebApp, eventsOf, isReady, podsOf, startCluster, type TestCluster } from '../support/cluster.js';
import { type RunningSickbay, startSickbay, waitForInjection } from '../support/sickbay.js';

describe('pods that escaped injection', () => {
  let t: TestCluster;
  let sickbay: RunningSickbay | undefined;
  const ns = 'shop';
  const injected = (p: { metadata?: { annotations?: Record<string, string> } }) => p.metadata?.annotations?.['sickbay.io/injected'] === 'true';

  before(async () => {
    t = await startCluster({ nodes: 2 });
    await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
    // No webhook registered yet: these pods are created as they are.
    await createWebApp(t, ns, 'web', 2);
    await waitFor('2 ready web pods', async () => (await podsOf(t.core, ns, 'app=web')).filter(isReady).length === 2);
  });
  after(async () => {
    await sickbay?.stop();
    await t?.stop();
  });

  it('are reported: an Event on each, the gauge, and sickbay status', async () => {
    const metrics = new Metrics();
    sickbay = await startSickbay(t, { SICKBAY_CONTROLLERS: 'true' }, { metrics });
    const pods = await podsOf(t.core, ns, 'app=web');
    assert.ok(pods.every((p) => !injected(p)));
    for (const p of pods) {
      await waitFor(`NotInjected on ${p.metadata!.name}`, async () =>
        (await eventsOf(t, ns, { name: p.metadata!.name, reason: 'NotInjected' })).length === 1,
      );
    }
    assert.match(await metrics.registry.getSingleMetricAsString('sickbay_uninjected_pods'), /sickbay_uninjected_pods 2/);
    const out = await status(t.kc);
    assert.match(out, /Pods that escaped injection \(2\):/);
    for (const p of pods) assert.ok(out.includes(`${ns}/${p.metadata!.name}`));
    // Not asked to restart: the pods stay as they are.
    await new Promise((r) => setTimeout(r, 2_000));
    assert.deepEqual((await podsOf(t.core, ns, 'app=web')).map((p) => p.metadata!.uid).sort(), pods.map((p) => p.metadata!.uid).sort());
    await sickbay.stop();
    sickbay = undefined;
  });

  it('with SICKBAY_REPAIR_RESTART, their Deployment is restarted once the webhook works, and the new pods are injected', async () => {
    const metrics = new Metrics();
    sickbay = await startSickbay(t, { SICKBAY_CONTROLLERS: 'true', SICKBAY_REPAIR_RESTART: 'true' }, { metrics });
    await waitForInjection(t.core, ns); // the webhook works: a pod created now comes back injected
    await waitFor('the Deployment restarted', async () => !!(await t.apps.readNamespacedDeployment({ name: 'web', namespace: ns })).spec?.template?.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'], { timeoutMs: 40_000 });
    await waitFor('2 ready, injected web pods and no others', async () => {
      const pods = (await podsOf(t.core, ns, 'app=web')).filter((p) => !p.metadata?.deletionTimestamp);
      return pods.length === 2 && pods.every((p) => injected(p) && isReady(p));
    }, { timeoutMs: 60_000 });
    const restartEvents = async () => eventsOf(t, ns, { kind: 'Deployment', reason: 'RestartedForInjection' });
    await waitFor('a RestartedForInjection Event', async () => (await restartEvents()).length > 0);
    assert.equal((await restartEvents()).length, 1, 'restarted once');
    assert.match(await metrics.registry.getSingleMetricAsString('sickbay_repair_restarts_total'), /result="restarted"} 1/);
    await waitFor('the gauge back to 0', async () => /sickbay_uninjected_pods 0/.test(await metrics.registry.getSingleMetricAsString('sickbay_uninjected_pods')), { timeoutMs: 40_000 });
    await sickbay.stop();
    sickbay = undefined;
  });

  it('a namespace of running pods that opts in: all counted at once, their Events paced (30 a minute)', async () => {
    const late = 'late';
    await createNamespace(t.core, late);
    await createWebApp(t, late, 'big', 45);
    await waitFor('45 ready pods', async () => (await podsOf(t.core, late, 'app=big')).filter(isReady).length === 45, { timeoutMs: 60_000 });
    const metrics = new Metrics();
    sickbay = await startSickbay(t, { SICKBAY_CONTROLLERS: 'true' }, { metrics });
    await t.core.patchNamespace({ name: late, body: { metadata: { labels: { 'sickbay.io/injection': 'enabled' } } } }, mergePatchOptions);
    const notInjected = async () => eventsOf(t, late, { reason: 'NotInjected' });
    // At least: when this test runs alone, the other namespace's two escaped pods count too.
    const gauge = async () => Number(/sickbay_uninjected_pods (\d+)/.exec(await metrics.registry.getSingleMetricAsString('sickbay_uninjected_pods'))?.[1]);
    await waitFor('the gauge to count the 45', async () => (await gauge()) >= 45, { timeoutMs: 10_000 });
    const first = Date.now();
    await waitFor('the first Events', async () => (await notInjected()).length >= 25, { timeoutMs: 10_000 });
    // A full bucket (30), then one every 2 s: never the 45 at once.
    const early = (await notInjected()).length;
    assert.ok(early < 30 + (Date.now() - first) / 2000 + 2, `${early} NotInjected Events ${Date.now() - first} ms after the scan`);
    assert.ok(early < 45, 'all 45 Events at once');
    await waitFor('an Event for every pod, later', async () => new Set((await notInjected()).map((e) => e.involvedObject.name)).size === 45, { timeoutMs: 60_000 });
    assert.equal((await notInjected()).length, 45, 'one Event per pod');
  });

  it('containers the supervisor cannot wrap (no command): an Event on the workload naming the fix, the gauge, sickbay status', async () => {
    await sickbay?.stop();
    const plain = 'plain';
    await createNamespace(t.core, plain, { 'sickbay.io/injection': 'enabled' });
    const metrics = new Metrics();
    sickbay = await startSickbay(t, { SICKBAY_CONTROLLERS: 'true' }, { metrics });
    await waitForInjection(t.core, plain);
    // As most charts write it: the image's entrypoint, no command. The sidecar has one.
    await t.apps.createNamespacedDeployment({
      namespace: plain,
      body: {
        metadata: { name: 'cache' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'cache' } },
          template: {
            metadata: { labels: { app: 'cache' } },
            spec: { containers: [{ name: 'redis', image: 'example.com/redis:7' }, { name: 'exporter', image: 'example.com/exporter:1', command: ['/exporter'] }] },
          },
        },
      },
    });
    await waitFor('2 injected cache pods', async () => (await podsOf(t.core, plain, 'app=cache')).filter(injected).length === 2);
    const events = await waitFor('ContainerNotSupervised on the Deployment', async () => {
      const items = await eventsOf(t, plain, { kind: 'Deployment', name: 'cache', reason: 'ContainerNotSupervised' });
      return items.length ? items : undefined;
    }, { timeoutMs: 45_000 });
    assert.equal(events.length, 1, 'one Event for the workload, not one per pod');
    assert.match(events[0]!.message!, /container "redis" sets no command/);
    assert.match(events[0]!.message!, /sickbay\.io\/entrypoint\.redis/);
    assert.match(await metrics.registry.getSingleMetricAsString('sickbay_unsupervised_containers'), /sickbay_unsupervised_containers 2$/m, 'redis in both pods; the exporter is supervised');
    const out = await status(t.kc);
    assert.match(out, /Workloads with containers the supervisor cannot wrap \(1;/);
    assert.match(out, /plain\/Deployment\/cache {3}redis \(2 pods\); fix: annotate the pod template sickbay\.io\/entrypoint\.redis=/);
    // The fix works: with the annotation, new pods are supervised and the gauge falls to 0.
    await t.apps.patchNamespacedDeployment(
      { name: 'cache', namespace: plain, body: { spec: { template: { metadata: { annotations: { 'sickbay.io/entrypoint.redis': '["redis-server"]' } } } } } },
      mergePatchOptions,
    );
    await waitFor('the gauge at 0 once the rollout replaced the pods', async () => /sickbay_unsupervised_containers 0$/m.test(await metrics.registry.getSingleMetricAsString('sickbay_unsupervised_containers')), { timeoutMs: 90_000 });
    await sickbay.stop();
    sickbay = undefined;
  });
});
