// The Helm chart for real: `helm install` with the image built here, on the real node.
// The `sickbay serve` pod becomes Ready through its own probes (run by the kubelet), talks
// to the API server through the `kubernetes` Service (kube-proxy), and the API server
// calls its webhooks through their Service; the agent DaemonSet's pod on the real node
// reads the host's /proc and checks the real kubelet.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { NodeAgent } from '../../src/agent/agent.js';
import { parseProcessSpecs } from '../../src/core/agent-settings.js';
import { createLogger } from '../../src/core/log.js';
import { procRoot, type ProcRoot } from '../support/proc-root.js';
import { ensureBinaries } from '../../dev/binaries.js';
import { IMAGES } from '../../dev/images.js';
import { podReport } from '../../dev/pod-report.js';
import { REAL_NODE } from '../../dev/real-node.js';
import type { NodeHealth } from '../../src/core/nodehealth.js';
import { waitFor } from '../../src/util/wait.js';
import { createNamespace, eventsOf, isReady, podsOf, rawApiRequest, startCluster, type TestCluster } from '../support/cluster.js';
import { chartDir, helm, installOnRealNode } from '../support/helm.js';

const NS = 'sickbay-system';

describe('the Helm chart on the real node', { timeout: 900_000 }, () => {
  let t: TestCluster;
  // The kwok nodes report through agents run here: with them, an isolation of the real node
  // is within every guard (budget 1 of 5 nodes, 4 of 5 healthy, 1 of 5 late), so a test
  // that it does not happen can fail. The chart's agent runs on the real node only.
  const agents: Array<{ abort: AbortController; running: Promise<void>; proc: ProcRoot }> = [];
  before(async () => {
    t = await startCluster({ nodes: 4, realNode: true });
    await installOnRealNode(t.cp, 'self-managed', ['--set-json', `agent.nodeSelector={"${REAL_NODE.label}":"real"}`]);
    for (const n of (await t.core.listNode()).items.map((x) => x.metadata!.name!).filter((x) => x !== REAL_NODE.name)) {
      const proc = procRoot();
      proc.add(100, 'containerd');
      const agent = new NodeAgent(
        t.kc,
        { nodeName: n, checks: ['processes'], checkIntervalMs: 1000, heartbeatIntervalMs: 10_000, failureThreshold: 3, kubeletUrl: 'http://127.0.0.1:1/healthz', networkTargets: [], processes: parseProcessSpecs('containerd'), procRoot: proc.root },
        createLogger('warn').child({ node: n }),
      );
      const abort = new AbortController();
      agents.push({ abort, running: agent.run(abort.signal), proc });
    }
  });
  after(async () => {
    for (const a of agents) a.abort.abort();
    await Promise.all(agents.map((a) => a.running));
    for (const a of agents) a.proc.dispose();
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

  it('helm test passes (the webhook answers through its Service, verified by its CA; the CRD is served), and the CLI in the image works as NOTES.txt says', async () => {
    const kubeconfig = { KUBECONFIG: t.cp.kubeconfigPath };
    const r = await helm(['test', 'sickbay', '--namespace', NS, '--timeout', '3m', '--logs'], kubeconfig);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n${await podReport(t.core, NS, '', t.cp.file('logs/kubelet.log'))}`);
    assert.match(r.stdout, /the webhook answers at https:\/\/sickbay\.sickbay-system\.svc:443\/mutate, its certificate verified by the CA/);
    assert.match(r.stdout, /the NodeHealth CRD is served/);
    const notes = await helm(['get', 'notes', 'sickbay', '--namespace', NS], kubeconfig);
    const command = /kubectl (-n \S+ exec deploy\/\S+ -- node \/opt\/sickbay\/dist\/cli\.js status)/.exec(notes.stdout);
    assert.ok(command, notes.stdout);
    const kubectl = (await ensureBinaries(undefined, process.env, ['kubectl'])).kubectl;
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(kubectl, command[1]!.split(' '), { env: { ...process.env, ...kubeconfig } }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr })),
    );
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^Quarantined pods \(\d+\):/m);
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

  it('an agent that is away (an upgrade whose new agent cannot start for 45 s; a crash loop) never gets its node isolated: AgentDown, then healthy again (issue 26)', async () => {
    const custom = t.kc.makeApiClient(CustomObjectsApi);
    const health = async () => (await custom.getClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths', name: REAL_NODE.name }).catch(() => undefined)) as NodeHealth | undefined;
    const realHealthy = () => waitFor('the real node healthy by its agent, and the 4 kwok nodes', async () => {
      const all = ((await custom.listClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths' })) as { items: NodeHealth[] }).items;
      return all.filter((h) => h.status?.healthy && Date.now() - Date.parse(h.status.heartbeatTime ?? '') < 20_000).length === 5;
    }, { timeoutMs: 120_000, intervalMs: 1000 });
    const isolated = async () => !!(await t.core.readNode({ name: REAL_NODE.name })).spec?.taints?.some((x) => x.key === 'sickbay.io/isolated');
    const agentDownEvents = async () => (await eventsOf(t, 'default', { kind: 'Node', name: REAL_NODE.name, reason: 'AgentDown' })).length;
    /** Past the heartbeat deadline (3 x 10 s) plus `extra`, checking every second that the node is never tainted. */
    const neverIsolatedFor = async (ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        assert.ok(!(await isolated()), 'the real node was isolated while only its agent was away');
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    const kubeconfig = { KUBECONFIG: t.cp.kubeconfigPath };
    await realHealthy();

    // 1. helm upgrade whose new agent cannot start (its PriorityClass does not exist yet): 45 s without an agent.
    const up = await helm(['upgrade', 'sickbay', chartDir, '--namespace', NS, '--reset-then-reuse-values', '--wait=false', '--set', 'agent.priorityClassName=not-there-yet'], kubeconfig);
    assert.equal(up.code, 0, up.stderr);
    const gone = Date.parse((await health())!.status!.heartbeatTime!);
    await waitFor('the AgentDown Event', async () => (await agentDownEvents()) > 0, { timeoutMs: 60_000, intervalMs: 1000 });
    await neverIsolatedFor(Math.max(0, gone + 45_000 - Date.now()));
    const back = await helm(['upgrade', 'sickbay', chartDir, '--namespace', NS, '--reset-then-reuse-values', '--wait=false', '--set', 'agent.priorityClassName=system-node-critical'], kubeconfig);
    assert.equal(back.code, 0, back.stderr);
    await realHealthy();

    // 2. An agent killed into CrashLoopBackOff (a setting it cannot read makes it exit at start).
    const apps = t.apps;
    const ds = (await apps.listNamespacedDaemonSet({ namespace: NS })).items.find((d) => d.metadata!.name!.endsWith('-agent'))!;
    await apps.patchNamespacedDaemonSet(
      { name: ds.metadata!.name!, namespace: NS, body: [{ op: 'add', path: '/spec/template/spec/containers/0/env/-', value: { name: 'SICKBAY_LEASE_DURATION', value: 'bogus' } }] },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    const before = await agentDownEvents();
    await waitFor('the agent in CrashLoopBackOff', async () => (await podsOf(t.core, NS, 'app.kubernetes.io/component=agent')).some((p) => p.status?.containerStatuses?.some((c) => c.state?.waiting?.reason === 'CrashLoopBackOff')), { timeoutMs: 120_000, intervalMs: 1000 });
    await waitFor('a new AgentDown Event', async () => (await agentDownEvents()) > before || (await eventsOf(t, 'default', { name: REAL_NODE.name, reason: 'AgentDown' })).some((e) => (e.count ?? 1) > 1), { timeoutMs: 60_000, intervalMs: 1000 });
    await neverIsolatedFor(15_000);
    // Fixed (helm's three-way merge would keep a hand-made change: take it out by hand).
    const env = (await apps.readNamespacedDaemonSet({ name: ds.metadata!.name!, namespace: NS })).spec!.template.spec!.containers[0]!.env!.filter((e) => e.name !== 'SICKBAY_LEASE_DURATION');
    await apps.patchNamespacedDaemonSet({ name: ds.metadata!.name!, namespace: NS, body: [{ op: 'replace', path: '/spec/template/spec/containers/0/env', value: env }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    await realHealthy();
    assert.ok(!(await isolated()));
  });
});
