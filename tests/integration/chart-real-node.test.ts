// The Helm chart for real: `helm install` with the image built here, on the real node.
// The `sickbay serve` pod becomes Ready through its own probes (run by the kubelet), talks
// to the API server through the `kubernetes` Service (kube-proxy), and the API server
// calls its webhooks through their Service; the agent DaemonSet's pod on the real node
// reads the host's /proc and checks the real kubelet.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { IMAGES } from '../../src/dev/images.js';
import { podReport } from '../../src/dev/pod-report.js';
import { REAL_NODE } from '../../src/dev/real-node.js';
import type { NodeHealth } from '../../src/core/nodehealth.js';
import { waitFor } from '../../src/util/wait.js';
import { createNamespace, isReady, podsOf, rawApiRequest, startCluster, type TestCluster } from '../support/cluster.js';
import { helm, installOnRealNode } from '../support/helm.js';

const NS = 'sickbay-system';

describe('the Helm chart on the real node', { timeout: 900_000 }, () => {
  let t: TestCluster;
  before(async () => {
    t = await startCluster({ nodes: 1, realNode: true });
    await installOnRealNode(t.cp, 'self-managed');
  });
  after(async () => {
    if (t) await helm(['uninstall', 'sickbay', '--namespace', NS, '--wait=false'], { KUBECONFIG: t.cp.kubeconfigPath });
    await t?.stop();
  });

  it('sickbay serve becomes Ready on the real node through its own probes, in-cluster through the kubernetes Service', async () => {
    const pod = await waitFor(
      'the sickbay serve pod Ready',
      async () => {
        const p = (await podsOf(t.core, NS, 'app.kubernetes.io/component=serve')).find((x) => x.spec?.nodeName === REAL_NODE.name);
        return p && isReady(p) ? p : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 1000 },
    ).catch(async (err) => assert.fail(`${(err as Error).message}\n${await podReport(t.core, NS, '', t.cp.file('logs/kubelet.log'))}`));
    assert.equal(pod.spec!.containers[0]!.image, IMAGES.sickbay);
    assert.match(pod.status!.podIP!, /^198\.18\.64\./, 'a pod address from the real node bridge');
    // It got its leadership Lease through the API: it reached the API server from the pod network.
    await waitFor('the controllers leader', async () => {
      const leases = await rawApiRequest(t.kc, 'GET', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`);
      return leases.body.includes(pod.metadata!.name!);
    }, { timeoutMs: 60_000 });
  });

  it('the API server calls /mutate and /validate at the pod through their Service', async () => {
    await createNamespace(t.core, 'shop', { 'sickbay.io/injection': 'enabled' });
    const injected = await waitFor(
      "a pod injected by the in-cluster sickbay",
      async () => {
        const p = await t.core.createNamespacedPod({ namespace: 'shop', body: { metadata: { generateName: 'web-' }, spec: { containers: [{ name: 'web', image: 'x', command: ['/app'] }] } } });
        return p.metadata?.annotations?.['sickbay.io/injected'] === 'true' ? p : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    assert.equal(injected.spec!.containers[0]!.command![0], '/sickbay/bin/supervise');
    assert.equal(injected.spec!.initContainers![0]!.image, IMAGES.shim, "the shim image is the chart's shim image");

    // A quarantined pod, marked by sickbay's identity as the controller marks it (nobody else may).
    await t.core.createNamespacedPod({
      namespace: 'shop',
      body: { metadata: { name: 'broken', labels: { tier: 'web' } }, spec: { nodeSelector: { 'kubernetes.io/hostname': 'nowhere' }, containers: [{ name: 'web', image: 'x', command: ['/app'] }] } },
    });
    const marked = await rawApiRequest(await t.cp.serviceAccountKubeConfig(NS, 'sickbay'), 'PATCH', '/api/v1/namespaces/shop/pods/broken', {
      metadata: { labels: { 'sickbay.io/status': 'quarantined' }, annotations: { 'sickbay.io/original-labels': '{"app":"web"}' } },
    }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(marked.status, 200, marked.body);
    const patch = (labels: Record<string, string>) =>
      rawApiRequest(t.kc, 'PATCH', '/api/v1/namespaces/shop/pods/broken?dryRun=All', { metadata: { labels } }, { 'content-type': 'application/merge-patch+json' });
    const webhookCalls = async () => {
      const metrics = await rawApiRequest(t.kc, 'GET', '/metrics');
      return metrics.body
        .split('\n')
        .filter((l) => l.startsWith('apiserver_admission_webhook_admission_duration_seconds_count') && /type="validating"/.test(l) && /sickbay/.test(l))
        .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    };
    const before = await webhookCalls();
    // A harmless label on a quarantined pod: the policy lets it through to the webhook, which allows it.
    const ok = await patch({ note: 'looked-at' });
    assert.equal(ok.status, 200, ok.body);
    assert.ok((await webhookCalls()) > before, 'the API server called the validating webhook at the pod');
    // Putting back a label the quarantine removed is refused.
    const back = await patch({ app: 'web' });
    assert.equal(back.status, 403, back.body);
  });

  it("the agent DaemonSet's pod on the real node reads the host's /proc and checks the real kubelet", async () => {
    const custom = t.kc.makeApiClient(CustomObjectsApi);
    // Healthy, and past its first reports (made before its watch of the Node had synced,
    // "waiting for the Node object"; a message alone waits for the next heartbeat).
    const health = await waitFor(
      'a healthy NodeHealth from the real node, its processes read off the Node',
      async () => {
        const h = (await custom.getClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths', name: REAL_NODE.name }).catch(() => undefined)) as NodeHealth | undefined;
        const processes = h?.status?.checks?.find((c) => c.name === 'processes');
        return h?.status?.healthy && processes && processes.message !== 'waiting for the Node object' ? h : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    const checks = Object.fromEntries((health.status?.checks ?? []).map((c) => [c.name, c]));
    assert.ok(checks.kubelet?.ok, JSON.stringify(checks));
    assert.ok(checks.processes?.ok, JSON.stringify(checks));
    // The chart's default (processes: auto): what the Node says it runs.
    assert.match(checks.processes?.message ?? '', /^running: containerd\|docker-containerd, kubelet\|kubelite \(containerd node\)$/);
  });
});
