// Issue 6 on the real control plane, scheduler and kwok: pods placed on a broken node
// never become Ready; sickbay deletes them, remembers the node, and the webhook keeps
// the replacements off it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { waitFor } from '../../src/util/wait.js';
import { SIMULATE_READY_ANNOTATION } from '../../dev/kwok-config.js';
import { createNamespace, eventsOf, isReady, podsOf, startCluster, type TestCluster } from '../support/cluster.js';
import { type RunningSickbay, startSickbay, waitForInjection } from '../support/sickbay.js';

const ns = 'shop';
const BROKEN = 'kwok-node-0';

describe('pods that never become Ready', { timeout: 300_000 }, () => {
  let t: TestCluster;
  let sickbay: RunningSickbay;

  before(async () => {
    t = await startCluster({ nodes: 3, simulation: { neverReadyNodes: [BROKEN] } });
    sickbay = await startSickbay(t, { SICKBAY_CONTROLLERS: 'true', SICKBAY_NEVER_READY_AFTER: '3s' });
    await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
    await waitForInjection(t.core, ns);
  });
  after(async () => {
    await sickbay?.stop();
    await t?.stop();
  });

  const deploy = (name: string, replicas: number, spec: Partial<V1Pod['spec']> = {}, annotations?: Record<string, string>) =>
    t.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name, annotations },
        spec: {
          replicas,
          selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'x', command: ['/run'] }], ...spec } },
        },
      },
    });
  const avoidRecord = async (name: string) => (await t.apps.readNamespacedDeployment({ name, namespace: ns })).metadata?.annotations?.['sickbay.io/avoid-nodes'];
  const events = async (name: string) => (await eventsOf(t, ns, { name })).map((e) => e.reason);
  const exclusion = (p: V1Pod) =>
    p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.flatMap((term) => term.matchFields ?? []).find((f) => f.key === 'metadata.name' && f.operator === 'NotIn');

  it('deletes the pod stuck on the broken node, records the node, and the replacement runs elsewhere', async () => {
    // One pod per node, so one lands on the broken node.
    await deploy('web', 3, { topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: 'web' } } }] });
    const stuck = await waitFor('a pod on the broken node', async () => (await podsOf(t.core, ns, 'app=web')).find((p) => p.spec?.nodeName === BROKEN));
    assert.ok(!isReady(stuck), 'kwok never makes it Ready');
    await waitFor('the stuck pod deleted', async () => !(await podsOf(t.core, ns, 'app=web')).some((p) => p.metadata!.name === stuck.metadata!.name), { timeoutMs: 30_000 });
    const record = JSON.parse((await avoidRecord('web'))!);
    assert.deepEqual(Object.keys(record), [BROKEN]);
    assert.ok(Math.abs(Date.parse(record[BROKEN]) - Date.now()) < 60_000);
    const pods = await waitFor('3 ready pods, none on the broken node', async () => {
      const ps = await podsOf(t.core, ns, 'app=web');
      return ps.length === 3 && ps.every(isReady) ? ps : undefined;
    }, { timeoutMs: 60_000 });
    assert.ok(pods.every((p) => p.spec!.nodeName !== BROKEN));
    const replacement = pods.find((p) => exclusion(p));
    assert.ok(replacement, 'the replacement carries the exclusion');
    assert.deepEqual(exclusion(replacement!)!.values, [BROKEN]);
    // Events are written after the action, off the reconcile's path.
    await waitFor('a NeverReadyDeleted Event on the pod', async () => (await events(stuck.metadata!.name!)).includes('NeverReadyDeleted'));
    await waitFor('a NodeAvoided Event on the Deployment', async () => (await events('web')).includes('NodeAvoided'));
  });

  it("an app that starts and never becomes Ready is the app's fault: kept as the scene (quarantined once), never deleted, no node avoided, its replacement left alone (issue 25)", async () => {
    // Started by kwok on a good node, never Ready: what a crash at start held by the supervisor looks like to the API.
    await t.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'badconf' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'badconf' } },
          template: {
            metadata: { labels: { app: 'badconf' }, annotations: { [SIMULATE_READY_ANNOTATION]: 'false' } },
            spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: [BROKEN] }] }] } } }, containers: [{ name: 'c', image: 'x', command: ['/run'] }] },
          },
        },
      },
    });
    const first = await waitFor('the first pod quarantined as the scene', async () => (await podsOf(t.core, ns, 'sickbay.io/status=quarantined')).find((p) => p.metadata?.annotations?.['sickbay.io/owner'] === 'Deployment/badconf'), { timeoutMs: 30_000 });
    assert.match(first.metadata!.annotations!['sickbay.io/reason']!, /never Ready in \d+s: container c started on the node but the pod never became Ready; the app's fault, not node kwok-node-\d's/);
    await waitFor('a NeverReadyAppFault Event', async () => (await events(first.metadata!.name!)).includes('NeverReadyAppFault'));
    // Its replacement fails the same way: well past the never-Ready time (3 s), nothing more happens.
    const replacement = await waitFor('the replacement running', async () => (await podsOf(t.core, ns, 'app=badconf')).find((p) => p.status?.phase === 'Running'));
    await new Promise((r) => setTimeout(r, 8_000));
    const pods = await podsOf(t.core, ns, '');
    assert.ok(pods.some((p) => p.metadata!.uid === first.metadata!.uid && !p.metadata?.deletionTimestamp), 'the scene is kept, not deleted');
    assert.ok(pods.some((p) => p.metadata!.uid === replacement.metadata!.uid && !p.metadata?.deletionTimestamp && !p.metadata?.labels?.['sickbay.io/status']), 'the replacement is neither deleted nor quarantined: failing the same way is the app, not a new pod to take out');
    assert.equal(await avoidRecord('badconf'), undefined, 'no node avoided');
    assert.ok(!(await events(first.metadata!.name!)).includes('NeverReadyDeleted'));
    await t.apps.deleteNamespacedDeployment({ name: 'badconf', namespace: ns });
    await t.core.deleteNamespacedPod({ name: first.metadata!.name!, namespace: ns, gracePeriodSeconds: 0 });
  });

  it("never-Ready deletions have the per-workload back-off: a Deployment that can only land on the broken node is deleted 5 times, then left alone (issue 25)", async () => {
    // Its only feasible node is the broken one: each deletion's record is cleared (no other
    // node could take it) and the replacement lands there again.
    await deploy('hopeless', 1, { nodeSelector: { 'kubernetes.io/hostname': BROKEN } });
    await waitFor('a WorkloadBackOff Event on the Deployment', async () => (await events('hopeless')).includes('WorkloadBackOff'), { timeoutMs: 120_000, intervalMs: 500 });
    const deleted = async () => (await eventsOf(t, ns, { reason: 'NeverReadyDeleted' })).filter((e) => e.involvedObject.name?.startsWith('hopeless-')).length;
    const atBackOff = await deleted();
    assert.ok(atBackOff >= 1 && atBackOff <= 5, `${atBackOff} deletions: at most SICKBAY_BACKOFF_AFTER (5), then none`);
    await new Promise((r) => setTimeout(r, 8_000));
    assert.equal(await deleted(), atBackOff, 'no deletion after the back-off');
    await t.apps.deleteNamespacedDeployment({ name: 'hopeless', namespace: ns });
  });

  it('clears the record when every feasible node is recorded, and pods schedule again', async () => {
    await deploy('pinned', 1, { nodeSelector: { 'kubernetes.io/hostname': BROKEN } });
    await waitFor('the AvoidListCleared Event', async () => (await events('pinned')).includes('AvoidListCleared'), { timeoutMs: 60_000 });
    const pod = await waitFor('a pinned pod scheduled on its only feasible node without an exclusion', async () =>
      (await podsOf(t.core, ns, 'app=pinned')).find((p) => p.spec?.nodeName === BROKEN && !exclusion(p) && !p.metadata?.deletionTimestamp),
    );
    assert.ok(pod);
  });

  it('reports a garbage record and ignores it: pods are created, nothing is denied', async () => {
    await deploy('garbage', 2, { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: [BROKEN] }] }] } } } }, { 'sickbay.io/avoid-nodes': 'node-a, node-b' });
    await waitFor('2 ready pods', async () => {
      const ps = await podsOf(t.core, ns, 'app=garbage');
      return ps.length === 2 && ps.every(isReady);
    });
    await waitFor('a BadAvoidNodes Event', async () => (await events('garbage')).includes('BadAvoidNodes'));
  });
});
