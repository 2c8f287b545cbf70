// The pod judgement rows of the fault suite, each in a namespace of its own: a
// ResourceQuota that refuses the replacement, and most of a workload failing together.
// (They were in pod-isolation.test.ts; here `npm run chaos` runs them without the rest.)
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { Metrics } from '../../src/core/metrics.js';
import { waitFor } from '../../src/util/wait.js';
import { scenario } from '../support/chaos.js';
import { breakPod, createNamespace, createWebApp, eventsOf, failTogether, isReady, podsOf, startCluster, type TestCluster } from '../support/cluster.js';
import { type RunningSickbay, startSickbay } from '../support/sickbay.js';

describe('whose fault: a quota, a workload failing together', { timeout: 300_000 }, () => {
  let t: TestCluster;
  let sickbay: RunningSickbay;
  const metrics = new Metrics();

  before(async () => {
    t = await startCluster({ nodes: 3 });
    sickbay = await startSickbay(t, { SICKBAY_CONTROLLERS: 'true', SICKBAY_NOT_READY_GRACE: '500ms', SICKBAY_RESYNC: '30s' }, { metrics });
  });
  after(async () => {
    await sickbay?.stop();
    await t?.stop();
  });

  scenario('a ResourceQuota that refuses the replacement', {
    title: "when a ResourceQuota refuses a quarantined pod's replacement, keeps the scene and says on the Deployment that the workload is short, and what frees the room",
    load: 'a Deployment of 3 in a namespace whose ResourceQuota allows 3 pods',
    fault: 'one pod NotReady: quarantined, and its replacement refused by the quota (the scene still counts against it)',
    outcome: 'the scene kept; an Event on the Deployment says the workload is 1 short, why, and the release that frees the room; no deletion',
  }, async (fig) => {
    const quota = 'quota';
    await createNamespace(t.core, quota, { 'sickbay.io/injection': 'enabled' });
    await t.core.createNamespacedResourceQuota({ namespace: quota, body: { metadata: { name: 'pods' }, spec: { hard: { pods: '3' } } } });
    await createWebApp(t, quota, 'ledger', 3);
    const pods = await waitFor('3 ledger pods Ready', async () => {
      const ps = (await podsOf(t.core, quota, 'app=ledger')).filter((p) => !p.metadata?.deletionTimestamp);
      return ps.length === 3 && ps.every(isReady) ? ps : undefined;
    });
    const failed = pods[0]!.metadata!.name!;
    const started = Date.now();
    await breakPod(t, quota, failed);
    await waitFor('the pod quarantined', async () => (await t.core.readNamespacedPod({ name: failed, namespace: quota })).metadata?.labels?.['sickbay.io/status'] === 'quarantined', { timeoutMs: 30_000 });
    const events = async () => eventsOf(t, quota, { name: 'ledger' });
    const refused = await waitFor('a ReplacementRefused Event on the Deployment', async () => (await events()).find((e) => e.reason === 'ReplacementRefused'), { timeoutMs: 60_000 });
    fig('said after', `${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.match(refused.message ?? '', new RegExp(`1 of 3 pods missing: the ReplicaSet cannot create the replacement of quarantined ${failed} \\(FailedCreate: .*exceeded quota.*\\)\\. The scene is kept; \`sickbay release ${quota}/${failed}\` frees its share of the quota`));
    assert.equal(refused.type, 'Warning');
    // The scene stays: sickbay does not delete it to make room.
    await new Promise((r) => setTimeout(r, 5_000));
    const scene = await t.core.readNamespacedPod({ name: failed, namespace: quota });
    assert.equal(scene.metadata?.labels?.['sickbay.io/status'], 'quarantined');
    assert.equal(scene.metadata?.deletionTimestamp, undefined);
    fig('scene kept', 'yes');
    fig('deleted', 0);
  });

  scenario('3 of 4 pods of a workload fail together', {
    title: 'when most of a Deployment fails together, keeps one failing pod for diagnosis, deletes nothing, and says why',
    load: 'a Deployment of 4',
    fault: '3 pods NotReady at once (a bad config, a dependency down)',
    outcome: '0 deletions; the scene of one kept; an Event says why',
  }, async (fig) => {
    const batch = 'batch';
    const broken = await failTogether(t, batch, 'api', 4, 3);
    const batchEvents = async () => eventsOf(t, batch, { name: 'api' });
    await waitFor('a SystemicFailure Event on the Deployment', async () => (await batchEvents()).some((e) => e.reason === 'SystemicFailure' && /3 of 4/.test(e.message ?? '')), {
      timeoutMs: 10_000,
    });
    const kept = await waitFor('one failing pod quarantined', async () => {
      const q = await podsOf(t.core, batch, 'sickbay.io/status=quarantined');
      return q.length === 1 ? q : undefined;
    });
    assert.ok(broken.includes(kept[0]!.metadata!.name!), 'the quarantined pod is one of the failing ones');
    // Past a re-check (10 s), with the replacement Ready: it must not turn the rest into deletions.
    await new Promise((r) => setTimeout(r, 12_000));
    const names = (await podsOf(t.core, batch, '')).map((p) => p.metadata!.name!);
    fig('deleted', broken.filter((b) => !names.includes(b)).length);
    const scenes = (await podsOf(t.core, batch, 'sickbay.io/status=quarantined')).length;
    fig('quarantined', scenes);
    for (const b of broken) assert.ok(names.includes(b), `${b} was not deleted`);
    assert.equal(scenes, 1, 'one scene, not more');
    const text = await sickbay.handle.metrics.registry.getSingleMetricAsString('sickbay_quarantine_skips_total');
    assert.match(text, /reason="systemic"\} [1-9]/, 'the others were left alone');
  });
});
