// Node agents and the node controller on the real control plane: 10 kwok nodes, one
// agent per node (each with a prepared /proc holding its "containerd"), sickbay's
// controllers under their least-privilege identity, and kube-controller-manager doing
// the evictions. One agent watches real processes of this machine.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoordinationV1Api, CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import { protect, restore } from '../../src/cli/node.js';
import { status } from '../../src/cli/status.js';
import { installAgentIdentity, installNodeHealthCrd } from '../../dev/local-install.js';
import { createLogger } from '../../src/core/log.js';
import { Metrics } from '../../src/core/metrics.js';
import { NodeAgent } from '../../src/agent/agent.js';
import { parseProcessSpecs } from '../../src/core/agent-settings.js';
import { LABEL_NODE_LOCK, lockName, setLock } from '../../src/nodes/node-actions.js';
import type { NodeHealth } from '../../src/core/nodehealth.js';
import { waitFor } from '../../src/util/wait.js';
import { breakPod, createNamespace, createWebApp, eventsOf, startCluster, startKubelet, stopKubelet, type TestCluster } from '../support/cluster.js';
import { procRoot, type ProcRoot } from '../support/proc-root.js';
import { type RunningSickbay, SICKBAY_NS, startSickbay } from '../support/sickbay.js';
import { exists, registerDubboProvider, ZooKeeperServer, zkSession } from '../support/zookeeper.js';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const NODES = 10;
const HEARTBEAT_MS = 1000;

interface SimAgent {
  node: string;
  proc: ProcRoot;
  agent: NodeAgent;
  abort: AbortController;
  running: Promise<void>;
}

describe('node agents and the node controller', () => {
  let t: TestCluster;
  let sickbay: RunningSickbay;
  let sickbayEnv: Record<string, string>;
  let agentKc: KubeConfig;
  let custom: CustomObjectsApi;
  let zk: ZooKeeperServer;
  const zkSessions: Array<{ close(): void }> = [];
  const metrics = new Metrics();
  const agents = new Map<string, SimAgent>();
  const log = createLogger((process.env.SICKBAY_TEST_LOG_LEVEL as 'warn') ?? 'warn');

  const startAgent = (node: string, o: { procRoot?: string; processes?: string } = {}) => {
    const proc = procRoot();
    proc.add(100, 'containerd');
    const agent = new NodeAgent(
      agentKc,
      {
        nodeName: node,
        checks: ['conditions', 'processes'],
        checkIntervalMs: 1000,
        heartbeatIntervalMs: HEARTBEAT_MS,
        failureThreshold: 3,
        kubeletUrl: 'http://127.0.0.1:1/healthz',
        networkTargets: [],
        processes: parseProcessSpecs(o.processes ?? 'containerd'),
        procRoot: o.procRoot ?? proc.root,
      },
      log.child({ component: 'agent', node }),
    );
    const abort = new AbortController();
    const a: SimAgent = { node, proc, agent, abort, running: agent.run(abort.signal) };
    agents.set(node, a);
    return a;
  };
  const stopAgent = async (node: string) => {
    const a = agents.get(node)!;
    a.abort.abort();
    await a.running;
  };
  const health = (node: string) => custom.getClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths', name: node }) as Promise<NodeHealth>;
  const readNode = (name: string) => t.core.readNode({ name });
  const tainted = (n: V1Node) => !!n.spec?.taints?.some((x) => x.key === 'sickbay.io/isolated' && x.effect === 'NoExecute');
  const isolatedNodes = async () => (await t.core.listNode()).items.filter(tainted).map((n) => n.metadata!.name!).sort();
  const nodeEvents = async (node: string, reason: string) =>
    (await eventsOf(t, 'default', { kind: 'Node', name: node, reason }));
  /** Polls the node every 20 ms; resolves with the time the taint was first seen. */
  const taintSeen = (node: string, timeoutMs = 15_000) => waitFor(`${node} tainted`, async () => (tainted(await readNode(node)) ? Date.now() : undefined), { timeoutMs, intervalMs: 20 });
  const breakContainerd = (node: string) => agents.get(node)!.proc.remove(100);
  const fixContainerd = (node: string) => agents.get(node)!.proc.add(100, 'containerd');
  const processesCheck = async (node: string) => (await health(node)).status?.checks?.find((c) => c.name === 'processes');

  before(async () => {
    t = await startCluster({ nodes: NODES });
    custom = t.kc.makeApiClient(CustomObjectsApi);
    await installNodeHealthCrd(t.kc);
    await installAgentIdentity(t.kc, SICKBAY_NS, 'sickbay-agent');
    agentKc = await t.cp.serviceAccountKubeConfig(SICKBAY_NS, 'sickbay-agent');
    for (let i = 0; i < NODES; i++) startAgent(`kwok-node-${i}`);
    await waitFor('every agent heartbeating', async () => {
      const list = (await custom.listClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths' })) as { items: NodeHealth[] };
      return list.items.filter((h) => h.status?.healthy === true).length === NODES;
    });
    zk = await ZooKeeperServer.start();
    sickbayEnv = { SICKBAY_CONTROLLERS: 'true', SICKBAY_NODE_ISOLATION_BUDGET: '10%', SICKBAY_REGISTRIES: JSON.stringify([{ name: 'zk', connect: zk.connect }]) };
    sickbay = await startSickbay(t, sickbayEnv, { metrics });
  });

  after(async () => {
    await Promise.all([...agents.keys()].map(stopAgent));
    for (const a of agents.values()) a.proc.dispose();
    await sickbay?.stop();
    await t?.stop();
    for (const s of zkSessions) s.close();
    await zk?.stop();
  });

  it('kubectl get nodehealths shows node, healthy, failing checks and last heartbeat', async () => {
    const { rawApiRequest } = await import('../support/cluster.js');
    const res = await rawApiRequest(t.kc, 'GET', '/apis/sickbay.io/v1alpha1/nodehealths/kwok-node-0', undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' });
    const table = JSON.parse(res.body) as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    assert.deepEqual(table.columnDefinitions.map((c) => c.name), ['Name', 'Node', 'Healthy', 'Failing', 'Last Heartbeat', 'Age']);
    const [name, node, healthy, failing] = table.rows[0]!.cells;
    assert.deepEqual([name, node, healthy, failing], ['kwok-node-0', 'kwok-node-0', true, '']);
    const h = await health('kwok-node-0');
    assert.deepEqual(h.status?.checks?.map((c) => [c.name, c.ok]), [['conditions', true], ['processes', true]]);
    assert.equal(h.status?.heartbeatIntervalSeconds, 1);
    // The verdict as a standard condition (what `kubectl wait --for=condition=Healthy` reads).
    assert.deepEqual(h.status?.conditions?.map((c) => [c.type, c.status, c.reason, c.message]), [['Healthy', 'True', 'ChecksPassing', 'passing: conditions, processes']]);
  });

  it('an agent reporting a failing check: tainted within 2 s, labelled, locked, with an Event; restore lifts it and the lock stops a second isolation', async (ctx) => {
    const node = 'kwok-node-1';
    breakContainerd(node);
    const failedAt = await waitFor('the processes check failing', async () => {
      const c = await processesCheck(node);
      return c && !c.ok ? Date.parse(c.lastTransitionTime) : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    const seen = await taintSeen(node);
    ctx.diagnostic(`tainted ${seen - failedAt} ms after the agent's check turned failing`);
    const [healthy] = (await health(node)).status?.conditions ?? [];
    assert.deepEqual([healthy?.type, healthy?.status, healthy?.reason], ['Healthy', 'False', 'ChecksFailing']);
    assert.match(healthy?.message ?? '', /^processes: containerd is not running/);
    assert.ok(seen - failedAt <= 2_000, `tainted ${seen - failedAt} ms after the agent reported the failure`);
    const n = await readNode(node);
    assert.equal(n.metadata?.labels?.['sickbay.io/node-status'], 'isolated');
    assert.match((await waitFor('the NodeIsolated Event', async () => (await nodeEvents(node, 'NodeIsolated'))[0])).message ?? '', /failing: processes/);
    const lease = await t.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: SICKBAY_NS, name: lockName(node) });
    assert.equal(lease.spec?.leaseDurationSeconds, 45 * 60);
    assert.equal(lease.spec?.holderIdentity, 'sickbay-node-controller');

    assert.match(await restore(t.kc, { namespace: SICKBAY_NS, node }), /restored: taint and label removed; its protection lock holds until/);
    const restored = await readNode(node);
    assert.equal(tainted(restored), false);
    assert.equal(restored.metadata?.labels?.['sickbay.io/node-status'], undefined);
    // Still failing, but inside the lock window: not isolated again, and it says why.
    await waitFor('the IsolationSkipped Event', async () => (await nodeEvents(node, 'IsolationSkipped')).length > 0);
    assert.equal(tainted(await readNode(node)), false);
    fixContainerd(node);
    await waitFor('the node healthy again', async () => (await health(node)).status?.healthy === true);
  });

  it('protect keeps a faulty node in service, with an Event saying until when', async () => {
    const node = 'kwok-node-2';
    assert.match(await protect(t.kc, { namespace: SICKBAY_NS, node, seconds: 2 * 3600 }), /protected from isolation until/);
    breakContainerd(node);
    await waitFor('the IsolationSkipped Event', async () => (await nodeEvents(node, 'IsolationSkipped')).some((e) => /protected until/.test(e.message ?? '')), { timeoutMs: 15_000 });
    assert.equal(tainted(await readNode(node)), false);
    assert.ok((await t.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: SICKBAY_NS, name: lockName(node) })).spec?.leaseDurationSeconds === 7200);
    fixContainerd(node);
    await waitFor('the node healthy again', async () => (await health(node)).status?.healthy === true);
  });

  it("an agent that is away while its node's kubelet reports Ready (an upgrade, a crash loop): never isolated; AgentDown Event and metric; healthy again when it is back (issue 26)", async () => {
    const node = 'kwok-node-9';
    await stopAgent(node);
    const last = Date.parse((await health(node)).status!.heartbeatTime!);
    const down = await waitFor('the AgentDown Event', async () => (await nodeEvents(node, 'AgentDown'))[0], { timeoutMs: 15_000 });
    assert.match(down.message ?? '', /not isolating the node/);
    assert.match(await metrics.registry.getSingleMetricAsString('sickbay_nodes'), /state="agent-down"} 1/);
    // Well past the 3-interval deadline: still in service.
    await new Promise((r) => setTimeout(r, Math.max(0, last + 3 * HEARTBEAT_MS + 3_000 - Date.now())));
    assert.ok(!tainted(await readNode(node)), 'not tainted');
    assert.equal((await nodeEvents(node, 'NodeIsolated')).length, 0);
    agents.get(node)!.proc.dispose();
    startAgent(node);
    await waitFor(`${node} healthy again`, async () => (await health(node)).status?.healthy === true && /state="agent-down"} 0/.test(await metrics.registry.getSingleMetricAsString('sickbay_nodes')), { timeoutMs: 15_000 });
  });

  it("a quarantined pod tolerates sickbay's own node taint: isolating its node evicts the other pods, never the kept scene (issue 26)", async () => {
    const nsq = 'scene';
    await createNamespace(t.core, nsq, { 'sickbay.io/injection': 'enabled' });
    await createWebApp(t, nsq, 'kept', 3);
    const pods = await waitFor('3 ready kept pods', async () => ((ps) => (ps.length === 3 && ps.every((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) ? ps : undefined))((await t.core.listNamespacedPod({ namespace: nsq, labelSelector: 'app=kept' })).items));
    const victim = pods[0]!;
    const node = victim.spec!.nodeName!;
    await breakPod(t, nsq, victim.metadata!.name!);
    const quarantined = await waitFor('quarantined, with the toleration', async () => {
      const p = await t.core.readNamespacedPod({ name: victim.metadata!.name!, namespace: nsq });
      return p.metadata?.labels?.['sickbay.io/status'] === 'quarantined' && p.spec?.tolerations?.some((x) => x.key === 'sickbay.io/isolated' && x.operator === 'Exists' && x.effect === 'NoExecute' && x.tolerationSeconds == null) ? p : undefined;
    }, { timeoutMs: 15_000 });
    // Another pod on that node, without the toleration, to show the taint does evict.
    const bystander = await t.core.createNamespacedPod({ namespace: nsq, body: { metadata: { name: 'bystander', labels: { 'sickbay.io/inject': 'false' } }, spec: { nodeName: node, containers: [{ name: 'c', image: 'example.com/x:1' }] } } });
    await waitFor('the bystander running', async () => (await t.core.readNamespacedPod({ name: 'bystander', namespace: nsq })).status?.phase === 'Running');
    // The node isolated: sickbay's taint, as the node controller writes it; kube-controller-manager's taint manager evicts.
    const taint = { key: 'sickbay.io/isolated', value: 'checks-failing', effect: 'NoExecute', timeAdded: new Date() };
    await t.core.patchNode({ name: node, body: { spec: { taints: [...((await readNode(node)).spec?.taints ?? []), taint] } } }, mergePatch);
    try {
      await waitFor('the bystander evicted', async () => {
        const p = await t.core.readNamespacedPod({ name: 'bystander', namespace: nsq }).catch(() => undefined);
        return !p || p.metadata!.uid !== bystander.metadata!.uid || !!p.metadata?.deletionTimestamp;
      }, { timeoutMs: 20_000 });
      await new Promise((r) => setTimeout(r, 2_000));
      const still = await t.core.readNamespacedPod({ name: victim.metadata!.name!, namespace: nsq });
      assert.equal(still.metadata!.uid, quarantined.metadata!.uid);
      assert.ok(!still.metadata?.deletionTimestamp, 'the quarantined pod is not evicted');
      assert.equal(still.status?.phase, 'Running');
    } finally {
      await t.core.patchNode({ name: node, body: { spec: { taints: ((await readNode(node)).spec?.taints ?? []).filter((x) => x.key !== 'sickbay.io/isolated') } } }, mergePatch);
    }
    await t.core.deleteNamespace({ name: nsq });
  });

  it('heartbeats stop: tainted within 1 s after the 3-interval deadline; its pods leave the registries, are evicted and replaced on other nodes', async (ctx) => {
    await createNamespace(t.core, 'shop', { 'sickbay.io/injection': 'enabled' });
    await createWebApp(t, 'shop', 'cart', 10);
    const running = await waitFor('10 cart pods running', async () => {
      const pods = (await t.core.listNamespacedPod({ namespace: 'shop', labelSelector: 'app=cart' })).items.filter((p) => p.status?.phase === 'Running');
      return pods.length === 10 ? pods : undefined;
    });
    // Not kwok-node-1 or -2: their protection locks (earlier tests) keep them in service.
    const node = running.map((p) => p.spec!.nodeName!).find((n) => !['kwok-node-1', 'kwok-node-2'].includes(n))!;
    const victims = running.filter((p) => p.spec?.nodeName === node).map((p) => p.metadata!.name!);
    // Each pod registered as a Dubbo provider, in a session of its own.
    const providers = new Map<string, string>();
    for (const p of running) {
      const s = await zkSession(zk.connect);
      zkSessions.push(s);
      providers.set(p.metadata!.name!, await registerDubboProvider(s, 'com.shop.CartService', p.status!.podIP!, 20880));
    }
    const victimIps = new Set(running.filter((p) => victims.includes(p.metadata!.name!)).map((p) => p.status!.podIP!));
    const bystander = running.find((p) => !victimIps.has(p.status!.podIP!))!;
    const probe = await zkSession(zk.connect);
    zkSessions.push(probe);
    // The node goes away: its kubelet stops reporting (Ready Unknown, as kube-controller-manager
    // writes it) and its agent falls silent. The kubelet's silence is the evidence about the node.
    const staleMajority = async () => Number(/reason="stale-majority"} (\d+)/.exec(await metrics.registry.getSingleMetricAsString('sickbay_node_isolation_skips_total'))?.[1] ?? 0);
    const guardBefore = await staleMajority();
    await stopKubelet(t, node);
    await stopAgent(node);
    const last = Date.parse((await health(node)).status!.heartbeatTime!);
    const seen = await taintSeen(node, 20_000);
    const late = seen - (last + 3 * HEARTBEAT_MS);
    // With 1 s heartbeats on 2 busy cores, most agents of this process can be late at one
    // moment (a CI run saw 6 of 10): the stale-majority guard then holds isolation, as it
    // must, and gives every node a full deadline again once the heartbeats are back.
    const guarded = (await staleMajority()) > guardBefore;
    ctx.diagnostic(`tainted ${late} ms after the 3-interval deadline${guarded ? '; the stale-majority guard held isolation meanwhile' : ''}`);
    assert.ok(late <= (guarded ? 3 * HEARTBEAT_MS + 2_000 : 1_000), `tainted ${late} ms after the deadline${guarded ? ' (the guard held it)' : ''}`);
    assert.ok(late > -200, `tainted ${-late} ms before the deadline`);
    const isolatedEvent = await waitFor('the NodeIsolated Event', async () => (await nodeEvents(node, 'NodeIsolated'))[0]);
    assert.match(isolatedEvent.message ?? '', /no heartbeat/);
    await waitFor("the isolated node's pods out of ZooKeeper", async () => {
      for (const v of victims) if (await exists(probe, providers.get(v)!)) return false;
      return true;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    assert.ok(await exists(probe, providers.get(bystander.metadata!.name!)!), "a pod on another node keeps its registration");
    await waitFor('the evicted pods gone and 10 replacements running elsewhere', async () => {
      const pods = (await t.core.listNamespacedPod({ namespace: 'shop', labelSelector: 'app=cart' })).items;
      const live = pods.filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running');
      return !pods.some((p) => victims.includes(p.metadata!.name!)) && live.length === 10 && live.every((p) => p.spec?.nodeName !== node);
    }, { timeoutMs: 30_000 });
    assert.equal((await metrics.registry.getSingleMetricAsString('sickbay_node_isolations_total')).match(/cause="heartbeat",result="isolated"} 1/)?.length, 1);
    // The kubelet back (kwok reports the node Ready again); the isolation stands until a restore.
    await startKubelet(t, node);
  });

  it('budget: 3 of 10 faulty with a budget of 1 — one isolated, Events for the other two', async () => {
    const isolated = await isolatedNodes();
    assert.equal(isolated.length, 1, `one node isolated from the previous test: ${isolated}`);
    const more = ['kwok-node-3', 'kwok-node-4', 'kwok-node-5'].filter((n) => !isolated.includes(n)).slice(0, 2); // 2 more: 3 faulty
    for (const n of more) breakContainerd(n);
    for (const n of more) await waitFor(`IsolationDeferred on ${n}`, async () => (await nodeEvents(n, 'IsolationDeferred')).length > 0, { timeoutMs: 15_000 });
    assert.deepEqual(await isolatedNodes(), isolated);
    assert.match((await nodeEvents(more[0]!, 'IsolationDeferred'))[0]!.message!, /budget/);
    const out = await status(t.kc, SICKBAY_NS);
    assert.match(out, new RegExp(`Isolated nodes \\(1\\):\\n  ${isolated[0]}   heartbeat-stale, \\d+s ago, locked until `));
    assert.match(out, /Protected nodes \(\d\):\n  kwok-node-/);
    assert.match(out, /Node health: 10 reporting, 2 unhealthy/);
    for (const n of more) fixContainerd(n);
    for (const n of more) await waitFor(`${n} healthy`, async () => (await health(n)).status?.healthy === true);
  });

  it('a leader that died between the lock and the taint: the next one gives a healthy node its lock back and isolates a faulty one', async () => {
    for (const [node, a] of agents) {
      if (!a.abort.signal.aborted) continue;
      a.proc.dispose();
      startAgent(node);
    }
    // A stopped agent's NodeHealth still says healthy: wait for fresh heartbeats.
    await waitFor('every agent heartbeating again', async () => {
      const list = (await custom.listClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths' })) as { items: NodeHealth[] };
      return list.items.length === NODES && list.items.every((h) => h.status?.healthy === true && Date.now() - Date.parse(h.status.heartbeatTime ?? '') < 2 * HEARTBEAT_MS);
    });
    // The budget test's isolated node, its agent back now: restored.
    for (const n of await isolatedNodes()) await restore(t.kc, { namespace: SICKBAY_NS, node: n });
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS + 500));
    assert.deepEqual(await isolatedNodes(), [], 'no node isolated while its agent came back');
    await sickbay.stop();
    // What a leader leaves when it dies right after taking the locks: phase "isolating", no taint.
    const coord = t.kc.makeApiClient(CoordinationV1Api);
    const locked = new Set((await coord.listNamespacedLease({ namespace: SICKBAY_NS, labelSelector: 'sickbay.io/node-lock=true' })).items.map((l) => l.metadata?.annotations?.['sickbay.io/node']));
    const [healthyNode, faultyNode] = [...agents.keys()].filter((n) => !locked.has(n));
    assert.ok(healthyNode && faultyNode, 'two nodes without a lock');
    for (const node of [healthyNode, faultyNode]) {
      await setLock(coord, SICKBAY_NS, node, { durationMs: 45 * 60_000, holder: 'sickbay-node-controller', reason: 'isolated: failing: processes', ifFree: false, phase: 'isolating' });
    }
    breakContainerd(faultyNode);
    await waitFor(`${faultyNode} reported unhealthy`, async () => (await health(faultyNode)).status?.healthy === false);

    sickbay = await startSickbay(t, sickbayEnv, { metrics });
    await taintSeen(faultyNode, 20_000);
    const lockOf = (node: string) => coord.readNamespacedLease({ namespace: SICKBAY_NS, name: lockName(node) });
    await waitFor(`the lock of ${healthyNode} given back`, async () => (await lockOf(healthyNode).then(() => false, (err) => /404|not found/i.test(String(err?.code ?? err)))));
    assert.equal(tainted(await readNode(healthyNode)), false);
    assert.match((await nodeEvents(healthyNode, 'IsolationLockReleased'))[0]?.message ?? '', /previous sickbay leader took the protection lock/);
    await waitFor(`the lock of ${faultyNode} marked isolated`, async () => (await lockOf(faultyNode)).metadata?.annotations?.['sickbay.io/phase'] === 'isolated');
    assert.match(await metrics.registry.getSingleMetricAsString('sickbay_node_isolations_total'), /cause="half-done",result="lock-released"} 2/);

    await restore(t.kc, { namespace: SICKBAY_NS, node: faultyNode });
    fixContainerd(faultyNode);
  });

  it('a cordoned node is left to whoever drains it; 6 of 10 unhealthy at once (a bad check everywhere): once under 51% healthy, nothing more is isolated', async () => {
    const before = await isolatedNodes();
    const cordoned = 'kwok-node-5';
    const reasons = ['NodeIsolated', 'IsolationDeferred', 'IsolationSkipped'];
    const eventCount = async () => (await Promise.all(reasons.map((r) => nodeEvents(cordoned, r)))).reduce((sum, evs) => sum + evs.reduce((c, e) => c + (e.count ?? 1), 0), 0);
    const eventsBefore = await eventCount();
    await t.core.patchNode({ name: cordoned, body: { spec: { unschedulable: true } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    breakContainerd(cordoned);
    await waitFor(`${cordoned} reported unhealthy`, async () => (await health(cordoned)).status?.healthy === false);
    await waitFor('the maintenance gauge', async () => /state="maintenance"} 1/.test(await metrics.registry.getSingleMetricAsString('sickbay_nodes')));
    await new Promise((r) => setTimeout(r, 2_000));
    assert.equal(tainted(await readNode(cordoned)), false, 'a cordoned node is not isolated');
    assert.equal(await eventCount(), eventsBefore, 'no isolation Event about the cordoned node');
    fixContainerd(cordoned);
    await t.core.patchNode({ name: cordoned, body: { spec: { unschedulable: false } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await waitFor(`${cordoned} healthy`, async () => (await health(cordoned)).status?.healthy === true);

    const broken = [...agents.keys()].filter((n) => !before.includes(n)).slice(0, 6);
    for (const n of broken) breakContainerd(n);
    await waitFor('the NodeIsolationSuspended Event naming too few healthy nodes', async () =>
      (await eventsOf(t, SICKBAY_NS, { reason: 'NodeIsolationSuspended' })).some((e) => /only \d of 10 reporting nodes are healthy, under the minimum of 51%/.test(e.message ?? '')),
      { timeoutMs: 15_000 },
    );
    // The agents report within a check interval of each other: the first faulty node may
    // be isolated (the budget, 1) before the healthy share falls under 51%; after, none.
    const atSuspension = await isolatedNodes();
    assert.ok(atSuspension.length <= before.length + 1, `at most the budget isolated before the guard: ${atSuspension}`);
    await new Promise((r) => setTimeout(r, 3_000));
    assert.deepEqual(await isolatedNodes(), atSuspension, 'nothing isolated once under the minimum');
    assert.match(await metrics.registry.getSingleMetricAsString('sickbay_node_isolation_skips_total'), /reason="too-few-healthy"} 1/);
    for (const n of atSuspension.filter((x) => !before.includes(x))) await restore(t.kc, { namespace: SICKBAY_NS, node: n });
    for (const n of broken) fixContainerd(n);
    for (const n of broken) await waitFor(`${n} healthy`, async () => (await health(n)).status?.healthy === true);
  });

  it("per node pool (SICKBAY_NODE_MIN_HEALTHY_GROUP_LABEL): a pool mostly failing keeps its nodes, another pool's faulty node is isolated", async () => {
    const label = 'sickbay.test/pool';
    // Nodes an earlier test isolated hold a lock (they would not be isolated again): the
    // node expected to be isolated has none; a held pool is held whatever its locks.
    const leases = (await t.kc.makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace: SICKBAY_NS, labelSelector: `${LABEL_NODE_LOCK}=true` })).items;
    const locked = new Set(leases.map((l) => l.metadata?.annotations?.['sickbay.io/node']));
    const all = [...agents.keys()].sort();
    const free = all.filter((n) => !locked.has(n));
    assert.ok(free.length >= 2, `${free.length} nodes without a lock`);
    const gpu = [...all.filter((n) => locked.has(n)), ...free].slice(0, 4);
    assert.ok(free.some((n) => !gpu.includes(n)), 'a free node outside the gpu pool');
    const general = [...agents.keys()].filter((n) => !gpu.includes(n));
    for (const [nodes, pool] of [[gpu, 'gpu'], [general, 'general']] as const) {
      for (const name of nodes) await t.core.patchNode({ name, body: { metadata: { labels: { [label]: pool } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    }
    // Isolated nodes count as unhealthy in the cluster-wide share: start from none, so 4
    // failing of 10 stays above 51% and only the pool's own share decides.
    for (const n of await isolatedNodes()) await restore(t.kc, { namespace: SICKBAY_NS, node: n });
    await sickbay.stop();
    const m = new Metrics();
    sickbay = await startSickbay(t, { ...sickbayEnv, SICKBAY_NODE_ISOLATION_BUDGET: '5', SICKBAY_NODE_MIN_HEALTHY_GROUP_LABEL: label }, { metrics: m });
    const before = await isolatedNodes();
    // A bad driver on the gpu pool: 3 of its 4 nodes fail (70% healthy in all, above 51%);
    // one general node fails too.
    const gpuBroken = gpu.slice(0, 3);
    const generalBroken = free.find((n) => general.includes(n))!;
    for (const n of [...gpuBroken, generalBroken]) breakContainerd(n);
    await taintSeen(generalBroken, 20_000);
    for (const n of gpuBroken) {
      const held = await waitFor(`IsolationHeld on ${n}`, async () => (await nodeEvents(n, 'IsolationHeld'))[0], { timeoutMs: 15_000 });
      // Held from the moment the pool fell under 51% (2 of 4 healthy), as its nodes failed one by one.
      assert.match(held.message!, new RegExp(`only [12] of 4 reporting nodes with ${label}=gpu are healthy, under the minimum of 51%`));
    }
    await new Promise((r) => setTimeout(r, 2_000));
    assert.deepEqual(await isolatedNodes(), [...before, generalBroken].sort(), 'the gpu pool keeps its nodes');
    assert.match(await m.registry.getSingleMetricAsString('sickbay_node_isolation_skips_total'), /reason="too-few-healthy-in-group"} 3/);
    await restore(t.kc, { namespace: SICKBAY_NS, node: generalBroken });
    for (const n of [...gpuBroken, generalBroken]) fixContainerd(n);
    for (const n of [...gpuBroken, generalBroken]) await waitFor(`${n} healthy`, async () => (await health(n)).status?.healthy === true);
  });
});

describe('the node agent against real processes', () => {
  let t: TestCluster;
  let dir: string;
  const children: ChildProcess[] = [];

  before(async () => {
    t = await startCluster({ nodes: 1 });
    await installNodeHealthCrd(t.kc);
    dir = mkdtempSync(path.join(tmpdir(), 'sickbay-procs-'));
    for (const name of ['sbt-runtime', 'sbt-cni']) symlinkSync('/bin/sleep', path.join(dir, name));
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    await t?.stop();
  });

  const run = (cmd: string, args: string[]) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    children.push(c);
    return c;
  };

  it('a killed process and a zombie fail the processes check after 3 seconds; both recover', async () => {
    let runtime = run(path.join(dir, 'sbt-runtime'), ['600']);
    const cni = run(path.join(dir, 'sbt-cni'), ['600']);
    const agent = new NodeAgent(
      t.kc,
      {
        nodeName: 'kwok-node-0',
        checks: ['processes'],
        checkIntervalMs: 1000,
        heartbeatIntervalMs: 10_000,
        failureThreshold: 3,
        kubeletUrl: 'http://127.0.0.1:1/healthz',
        networkTargets: [],
        processes: parseProcessSpecs('sbt-runtime,sbt-cni'),
        procRoot: '/proc',
      },
      createLogger('warn'),
    );
    const abort = new AbortController();
    const running = agent.run(abort.signal);
    const custom = t.kc.makeApiClient(CustomObjectsApi);
    const check = async () => {
      const h = (await custom.getClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths', name: 'kwok-node-0' })) as NodeHealth;
      return { healthy: h.status?.healthy, check: h.status?.checks?.[0] };
    };
    try {
      await waitFor('healthy with both processes running', async () => (await check()).check?.message === 'running: sbt-runtime, sbt-cni');

      const killedAt = Date.now();
      runtime.kill('SIGKILL');
      const failed = await waitFor('the check failing', async () => {
        const c = await check();
        return c.healthy === false ? c : undefined;
      }, { timeoutMs: 10_000, intervalMs: 50 });
      assert.equal(failed.check?.message, 'sbt-runtime is not running');
      const after = Date.parse(failed.check!.lastTransitionTime) - killedAt;
      assert.ok(after >= 1_900 && after <= 3_500, `failed ${after} ms after the kill (3 checks 1 s apart)`);
      runtime = run(path.join(dir, 'sbt-runtime'), ['600']);
      await waitFor('recovered after one good check', async () => (await check()).healthy === true, { timeoutMs: 3_000, intervalMs: 50 });

      // A zombie: the child exits, its parent (exec'd into sleep) never reaps it.
      cni.kill('SIGKILL');
      const parent = run('/bin/sh', ['-c', `"${path.join(dir, 'sbt-cni')}" 0 & exec sleep 600`]);
      const zombie = await waitFor('the zombie failing the check', async () => {
        const c = await check();
        return c.healthy === false ? c : undefined;
      }, { timeoutMs: 10_000, intervalMs: 50 });
      assert.match(zombie.check!.message, /^sbt-cni is a zombie \(pid \d+\)$/);
      parent.kill('SIGKILL'); // init reaps the zombie
      run(path.join(dir, 'sbt-cni'), ['600']);
      await waitFor('recovered', async () => (await check()).healthy === true, { timeoutMs: 5_000, intervalMs: 50 });
    } finally {
      abort.abort();
      await running;
    }
  });
});
