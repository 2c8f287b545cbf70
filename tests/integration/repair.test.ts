// Pods that escaped injection (created while the webhook was not there) are reported,
// and with SICKBAY_REPAIR_RESTART their Deployment is restarted once the webhook works.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '../../src/commands/status.js';
import { Metrics } from '../../src/metrics.js';
import { waitFor } from '../../src/util/wait.js';
import { createNamespace, createWebApp, isReady, podsOf, startCluster, type TestCluster } from '../support/cluster.js';
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
        (await t.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${p.metadata!.name},reason=NotInjected` })).items.length === 1,
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
    const events = (await t.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.kind=Deployment,reason=RestartedForInjection' })).items;
    assert.equal(events.length, 1, 'restarted once');
    assert.match(await metrics.registry.getSingleMetricAsString('sickbay_repair_restarts_total'), /result="restarted"} 1/);
    await waitFor('the gauge back to 0', async () => /sickbay_uninjected_pods 0/.test(await metrics.registry.getSingleMetricAsString('sickbay_uninjected_pods')), { timeoutMs: 40_000 });
  });
});
