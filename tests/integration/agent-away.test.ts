// Issue 26 on the real control plane: whose fault a silent agent is. An agent that is away
// while its node's kubelet reports Ready is reported (AgentDown), never a reason to isolate;
// one whose pod is Running and Ready on the node yet silent is the node's fault; the
// NodeHealth of a node no agent pod runs on any more is removed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { SIMULATE_KUBELET_ANNOTATION } from '../../dev/kwok-config.js';
import { installNodeHealthCrd } from '../../dev/local-install.js';
import { createLogger } from '../../src/core/log.js';
import { Metrics } from '../../src/core/metrics.js';
import type { NodeHealth } from '../../src/core/nodehealth.js';
import { waitFor } from '../../src/util/wait.js';
import { createNamespace, eventsOf, startCluster, type TestCluster } from '../support/cluster.js';
import { exists, registerDubboProvider, ZooKeeperServer, zkSession } from '../support/zookeeper.js';
import { restore } from '../../src/cli/node.js';
import { SimulatedAgents } from '../support/agents.js';
import { type RunningSickbay, SICKBAY_NS, startSickbay } from '../support/sickbay.js';

const NODES = 4;

describe('an agent that is away, and one that is silent on a live pod', { timeout: 300_000 }, () => {
  let t: TestCluster;
  let sickbay: RunningSickbay;
  let custom: CustomObjectsApi;
  const metrics = new Metrics();
  let zk: ZooKeeperServer;
  const sessions: Array<{ close(): void }> = [];
  let agents: SimulatedAgents;
  const health = (node: string) => custom.getClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths', name: node }).then((h) => h as NodeHealth, () => undefined);
  const tainted = async (node: string) => !!(await t.core.readNode({ name: node })).spec?.taints?.some((x) => x.key === 'sickbay.io/isolated');
  const events = async (node: string, reason: string) => eventsOf(t, 'default', { kind: 'Node', name: node, reason });

  before(async () => {
    t = await startCluster({ nodes: NODES });
    custom = t.kc.makeApiClient(CustomObjectsApi);
    await installNodeHealthCrd(t.kc);
    agents = new SimulatedAgents(t.kc, createLogger('warn'));
    for (let i = 0; i < NODES; i++) agents.start(`kwok-node-${i}`);
    await waitFor('every agent heartbeating', async () => {
      const list = (await custom.listClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths' })) as { items: NodeHealth[] };
      return list.items.filter((h) => h.status?.healthy === true).length === NODES;
    });
    zk = await ZooKeeperServer.start();
    sickbay = await startSickbay(t, { SICKBAY_CONTROLLERS: 'true', SICKBAY_HEARTBEAT_INTERVAL: '1s', SICKBAY_NODE_HEALTH_CLEANUP_AFTER: '5s', SICKBAY_REGISTRIES: JSON.stringify([{ name: 'zk', connect: zk.connect }]) }, { metrics });
  });
  after(async () => {
    await agents?.stopAll();
    await sickbay?.stop();
    await t?.stop();
    for (const s of sessions) s.close();
    await zk?.stop();
  });

  it('an agent away with no agent pod on its node: AgentDown, never isolated, and its stale NodeHealth removed after the cleanup time; back when an agent reports again', async () => {
    const node = 'kwok-node-2';
    await agents.stop(node);
    await waitFor('the AgentDown Event', async () => (await events(node, 'AgentDown')).length > 0, { timeoutMs: 15_000 });
    await waitFor('the NodeHealth removed', async () => (await health(node)) === undefined, { timeoutMs: 20_000, intervalMs: 250 });
    const removed = await waitFor('a NodeHealthRemoved Event', async () => (await events(node, 'NodeHealthRemoved'))[0]);
    assert.match(removed.message ?? '', /no sickbay agent pod has run on this node/);
    assert.match(await metrics.registry.getSingleMetricAsString('sickbay_nodehealths_removed_total'), /sickbay_nodehealths_removed_total 1/);
    assert.equal(await tainted(node), false, 'never isolated');
    agents.start(node);
    await waitFor('the NodeHealth back and healthy', async () => (await health(node))?.status?.healthy === true, { timeoutMs: 15_000 });
  });

  it('a pod that tolerates the isolation stays on the node, out of the registries; a restore lets it register again (issue 26)', async () => {
    const node = 'kwok-node-3';
    await createNamespace(t.core, 'shop', { 'sickbay.io/injection': 'enabled' });
    await t.core.createNamespacedPod({ namespace: 'shop', body: { metadata: { name: 'stays' }, spec: { nodeName: node, tolerations: [{ key: 'sickbay.io/isolated', operator: 'Exists', effect: 'NoExecute' }], containers: [{ name: 'app', image: 'x', command: ['/app'] }] } } });
    const pod = await waitFor('the pod running', async () => ((p) => (p.status?.podIP && p.status.phase === 'Running' ? p : undefined))(await t.core.readNamespacedPod({ name: 'stays', namespace: 'shop' })));
    const session = async () => ((s) => (sessions.push(s), s))(await zkSession(zk.connect));
    const provider = await registerDubboProvider(await session(), 'com.shop.StockService', pod.status!.podIP!, 20880);
    const probe = await session();
    agents.proc(node).remove(100); // its containerd gone: the processes check fails, the node is isolated
    await waitFor(`${node} isolated`, () => tainted(node), { timeoutMs: 20_000, intervalMs: 250 });
    await waitFor('its provider out of ZooKeeper', async () => !(await exists(probe, provider)), { timeoutMs: 10_000, intervalMs: 100 });
    assert.ok(!(await t.core.readNamespacedPod({ name: 'stays', namespace: 'shop' })).metadata?.deletionTimestamp, 'it tolerates the taint and stays');
    agents.proc(node).add(100, 'containerd');
    await restore(t.kc, { namespace: SICKBAY_NS, node });
    await waitFor(`${node} restored`, async () => !(await tainted(node)));
    // The app registers again (its session reconnects): it is in service again and stays listed.
    await new Promise((r) => setTimeout(r, 1_000));
    const again = await registerDubboProvider(await session(), 'com.shop.StockService', pod.status!.podIP!, 20880);
    await new Promise((r) => setTimeout(r, 3_000));
    assert.ok(await exists(probe, again), 'the re-registration after the restore is not removed');
    await t.core.deleteNamespacedPod({ name: 'stays', namespace: 'shop', gracePeriodSeconds: 0 });
  });

  it("a tenant's DiskPressure is the kubelet's to remedy: reported by the agent, the node never isolated (issue 26)", async () => {
    const node = 'kwok-node-0';
    // The kubelet reports DiskPressure (kwok leaves the node's status to the test meanwhile).
    await t.core.patchNode({ name: node, body: { metadata: { annotations: { [SIMULATE_KUBELET_ANNOTATION]: 'pressure' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const now = new Date();
    const pressure = { type: 'DiskPressure', status: 'True', reason: 'KubeletHasDiskPressure', message: 'ephemeral-storage 2% available', lastHeartbeatTime: now, lastTransitionTime: now };
    const writePressure = () => t.core.patchNodeStatus({ name: node, body: { status: { conditions: [pressure, { type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: now, lastTransitionTime: now }] } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    await writePressure();
    try {
      const seen = await waitFor('the agent reporting the pressure', async () => {
        // kwok's last scheduled heartbeat may still overwrite it once: write it again.
        const n = await t.core.readNode({ name: node });
        if (!n.status?.conditions?.some((c) => c.type === 'DiskPressure' && c.status === 'True')) await writePressure();
        return (await health(node))?.status?.checks?.find((c) => c.name === 'conditions' && /DiskPressure/.test(c.message ?? ''));
      }, { timeoutMs: 20_000, intervalMs: 250 });
      assert.equal(seen.ok, true, 'pressure alone does not fail the check');
      assert.match(seen.message ?? '', /the kubelet's evictions handle pressure/);
      // Well past the agent's failure threshold (3 checks, 1 s apart): healthy, not isolated.
      await new Promise((r) => setTimeout(r, 6_000));
      assert.equal((await health(node))?.status?.healthy, true);
      assert.equal(await tainted(node), false);
    } finally {
      await t.core.patchNode({ name: node, body: { metadata: { annotations: { [SIMULATE_KUBELET_ANNOTATION]: null } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    }
  });

  it("an agent pod Running and Ready on its node yet silent: the node's fault, isolated", async () => {
    const node = 'kwok-node-1';
    // The DaemonSet's pod as the chart labels it; kwok runs it and reports it Ready.
    await t.core.createNamespacedPod({ namespace: SICKBAY_NS, body: { metadata: { name: 'agent-on-1', labels: { 'app.kubernetes.io/component': 'agent' } }, spec: { nodeName: node, containers: [{ name: 'agent', image: 'x' }] } } });
    await waitFor('the agent pod Ready', async () => (await t.core.readNamespacedPod({ name: 'agent-on-1', namespace: SICKBAY_NS })).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    // Ready for longer than the heartbeat deadline (3 x 1 s; the condition's time has one-second
    // resolution): a pod Ready for less may be a new agent still starting, which says nothing.
    await new Promise((r) => setTimeout(r, 5_000));
    await agents.stop(node);
    await waitFor(`${node} isolated`, () => tainted(node), { timeoutMs: 20_000, intervalMs: 250 });
    const isolated = await waitFor('the NodeIsolated Event', async () => (await events(node, 'NodeIsolated'))[0]);
    assert.match(isolated.message ?? '', /no heartbeat, and its agent pod agent-on-1 has been Running and Ready since .* yet is silent/);
    assert.equal((await events(node, 'AgentDown')).length, 0, 'not taken for an agent that is away');
  });
});
