// The real node's kubelet restarted after a minute away, as a kubelet upgrade does: its
// containers run on, kube-controller-manager marks its pods NotReady once it gives up on
// the kubelet, and the restarted kubelet probes every container again from scratch. None
// of that is the pods' fault: sickbay must do nothing.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import type { V1Container } from '@kubernetes/client-node';
import { IMAGES, WORKLOAD_COMMAND } from '../../dev/images.js';
import { REAL_NODE } from '../../dev/real-node.js';
import { sleep, waitFor } from '../../src/util/wait.js';
import { scenario, secs } from '../support/chaos.js';
import { createNamespace, eventsOf, isReady, podsOf, startCluster, type TestCluster } from '../support/cluster.js';
import { type RunningSickbay, startSickbay, waitForInjection } from '../support/sickbay.js';

const ns = 'steady';

describe('the kubelet restarted on the real node', { timeout: 900_000 }, () => {
  let t: TestCluster;
  let sickbay: RunningSickbay;

  before(async () => {
    t = await startCluster({ nodes: 1, realNode: true });
    sickbay = await startSickbay(t, {
      SICKBAY_CONTROLLERS: 'true',
      SICKBAY_NOT_READY_GRACE: '1s',
      SICKBAY_SHIM_IMAGE: IMAGES.shim,
      SICKBAY_SHIM_SOURCE: '/opt/sickbay/shim',
      // The pod rules alone: the node's own verdict is another row's.
      SICKBAY_NODE_CONTROLLER: 'false',
    });
    await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
    await waitForInjection(t.core, ns);
  });
  after(async () => {
    await sickbay?.stop();
    await t?.stop();
  });

  scenario('a kubelet restarted after 60 s away on the real node', {
    title: "its kubelet stopped and started again 60 s later (past the node monitor grace period): the node's pods are not judged, 0 quarantines, 0 evictions, Ready again after",
    load: 'a supervised pod with a readiness probe on the real node; sickbay leading, 1 s grace',
    fault: 'the kubelet stopped (SIGTERM, as an upgrade does) for 60 s, then started again: its pod turned NotReady by the node lifecycle controller, its probes started again from scratch',
    outcome: '0 actions: the pod neither quarantined nor evicted; the same pod Ready again after',
  }, async (fig) => {
    const app: V1Container = {
      name: 'app',
      image: IMAGES.workload,
      imagePullPolicy: 'Never',
      command: WORKLOAD_COMMAND,
      ports: [{ name: 'http', containerPort: 8080 }],
      env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }, { name: 'SICKBAY_START_SECS', value: '5' }],
      securityContext: { runAsUser: 1000, runAsGroup: 1000, allowPrivilegeEscalation: false },
      readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 1 },
      resources: { requests: { cpu: '50m', memory: '128Mi' } },
    };
    await t.apps.createNamespacedDeployment({
      namespace: ns,
      body: { metadata: { name: 'steady' }, spec: { replicas: 1, selector: { matchLabels: { app: 'steady' } }, template: { metadata: { labels: { app: 'steady' } }, spec: { nodeSelector: { [REAL_NODE.label]: 'real' }, terminationGracePeriodSeconds: 1, containers: [app] } } } },
    });
    const before = await waitFor('the steady pod Ready on the real node', async () => ((p) => (p && isReady(p) ? p : undefined))((await podsOf(t.core, ns, 'app=steady'))[0]), { timeoutMs: 180_000 });
    assert.ok(before.metadata?.annotations?.['sickbay.io/injected'], 'supervised: injected by the webhook');
    const read = () => t.core.readNamespacedPod({ name: before.metadata!.name!, namespace: ns });
    const stoppedAt = Date.now();
    const restarting = t.cp.restartKubelet(60_000);
    await waitFor('the pod marked NotReady by the node lifecycle controller', async () => !isReady(await read()), { timeoutMs: 70_000, intervalMs: 500 });
    fig('pod NotReady after', secs(Date.now() - stoppedAt));
    await waitFor('a WaitingForNode Event', async () => (await eventsOf(t, ns, { name: before.metadata!.name, reason: 'WaitingForNode' })).length > 0, { timeoutMs: 15_000 });
    await restarting;
    fig('kubelet away', secs(Date.now() - stoppedAt));
    const startedAt = Date.now();
    await waitFor('the same pod Ready again', async () => isReady(await read()), { timeoutMs: 120_000 });
    fig('Ready again after the kubelet started', secs(Date.now() - startedAt));
    // Past the 30 s the pods of a node that came back have to report again.
    await sleep(35_000);
    const now = await read();
    const quarantined = now.metadata?.labels?.['sickbay.io/status'] === 'quarantined' ? 1 : 0;
    const evicted = now.metadata!.uid !== before.metadata!.uid || now.metadata?.deletionTimestamp ? 1 : 0;
    fig('quarantined', quarantined);
    fig('evicted', evicted);
    assert.equal(quarantined + evicted, 0, 'no action');
    assert.ok(isReady(now));
    assert.equal((await podsOf(t.core, ns, 'app=steady')).length, 1, 'no replacement');
  }, { timeout: 400_000 });
});
