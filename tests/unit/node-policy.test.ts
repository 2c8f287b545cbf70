import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heartbeatIntervalMs, heartbeatState, isolationBudget, maintenanceOf, type NodeView, planNodes } from '../../src/nodes/node-policy.js';

const now = 1_000_000;
const fresh = (name: string, extra: Partial<NodeView> = {}): NodeView => ({ name, isolated: false, health: { healthy: true, failing: '', stale: false, since: now - 3_600_000 }, ...extra });
const stale = (name: string, since = now - 1000, nodeEvidence: string | null = 'its kubelet is not reporting either (Ready Unknown)'): NodeView => ({ name, isolated: false, health: { healthy: true, failing: '', stale: true, late: true, faultySince: since, nodeEvidence: nodeEvidence ?? undefined } });
/** An agent that is silent while its node's kubelet reports Ready: away, not a node fault. */
const agentAway = (name: string): NodeView => stale(name, now - 1000, null);
const late = (name: string): NodeView => ({ name, isolated: false, health: { healthy: true, failing: '', stale: false, late: true } });
const failing = (name: string, checks = 'processes', since = now - 500): NodeView => ({ name, isolated: false, health: { healthy: false, failing: checks, stale: false, faultySince: since } });
const plan = (nodes: NodeView[], o: { budget?: number; inFlight?: string[]; recoveryAfterMs?: number; minHealthy?: number } = {}) =>
  planNodes({ nodes, budget: o.budget ?? 1, inFlight: new Set(o.inFlight ?? []), now, recoveryAfterMs: o.recoveryAfterMs ?? 0, minHealthy: o.minHealthy });

describe('heartbeat staleness', () => {
  it('is stale only past the missed intervals, and late past one and a half', () => {
    const seen = 1_000_000;
    const cases: Array<[string, number, { stale: boolean; late: boolean }]> = [
      ['just seen', seen, { stale: false, late: false }],
      ['one interval on', seen + 10_000, { stale: false, late: false }],
      ['one and a half intervals on', seen + 15_000, { stale: false, late: false }],
      ['just past one and a half', seen + 15_001, { stale: false, late: true }],
      ['at the deadline', seen + 30_000, { stale: false, late: true }],
      ['just past the deadline', seen + 30_001, { stale: true, late: true }],
      ['a clock behind the heartbeat', seen - 5_000, { stale: false, late: false }],
    ];
    for (const [what, now, want] of cases) {
      const got = heartbeatState(seen, 10_000, 3, now);
      assert.deepEqual({ stale: got.stale, late: got.late }, want, what);
      assert.equal(got.deadline, seen + 30_000, what);
    }
  });

  it("takes a NodeHealth's own interval when it states a usable one", () => {
    const cases: Array<[unknown, number]> = [[5, 5000], ['5', 5000], [0.5, 500], [undefined, 10_000], [null, 10_000], [0, 10_000], [-3, 10_000], ['soon', 10_000], [Infinity, 10_000], [3600, 10_000], [11, 10_000]];
    for (const [stated, want] of cases) assert.equal(heartbeatIntervalMs(stated, 10_000), want, String(stated));
  });
});

describe('node isolation budget', () => {
  it('is 10% of the nodes rounded down, never less than 1, or a count', () => {
    assert.equal(isolationBudget('10%', 10), 1);
    assert.equal(isolationBudget('10%', 5), 1);
    assert.equal(isolationBudget('10%', 39), 3);
    assert.equal(isolationBudget('10%', 0), 1);
    assert.equal(isolationBudget('3', 10), 3);
    assert.equal(isolationBudget('0', 10), 1);
    assert.throws(() => isolationBudget('lots', 10), /not a budget/);
  });
});

describe('an agent that is away is not a failing node (issue 26, item 1)', () => {
  it('a silent agent on a node whose kubelet reports Ready: AgentDown, not isolated, no budget spent', () => {
    const p = plan([agentAway('upgrading'), failing('bad'), ...Array.from({ length: 8 }, (_, i) => fresh(`ok-${i}`))]);
    assert.deepEqual(p.agentDown, ['upgrading']);
    assert.deepEqual(p.isolate.map((a) => a.name), ['bad'], 'the budget of 1 goes to the node with evidence');
    assert.deepEqual(p.deferred, []);
  });
  it('a silent agent with evidence about the node (kubelet silent too, or the agent pod Ready yet silent): isolated, saying why', () => {
    const p = plan([stale('gone'), ...Array.from({ length: 9 }, (_, i) => fresh(`ok-${i}`))]);
    assert.deepEqual(p.isolate.map((a) => [a.name, a.cause, a.detail]), [['gone', 'heartbeat', 'no heartbeat, and its kubelet is not reporting either (Ready Unknown)']]);
    assert.deepEqual(p.agentDown, []);
  });
  it('a DaemonSet rollout of 10% (every agent of it away for 45 s): nothing isolated', () => {
    const nodes = [...Array.from({ length: 10 }, (_, i) => agentAway(`rolling-${i}`)), ...Array.from({ length: 90 }, (_, i) => fresh(`ok-${i}`))];
    const p = plan(nodes, { budget: isolationBudget('10%', 100), minHealthy: 0.51 });
    assert.deepEqual([p.isolate, p.deferred, p.agentDown.length], [[], [], 10]);
  });
});

describe('small clusters and recovery (issue 26, item 4)', () => {
  // The defaults: budget 10% (at least 1), minHealthy 51%. One node faulty, the rest healthy,
  // then a second faulty node while the first is isolated.
  const table: Array<[nodes: number, isolatesFirst: boolean, budget: number, isolatesSecond: boolean]> = [
    [1, false, 1, false], // nowhere for its pods to go: 0 of 1 healthy is under 51%
    [2, false, 1, false], // 1 of 2 healthy is under 51% (Node Healthcheck's default says the same)
    [3, true, 1, false], // 2 of 3 healthy: one isolated; a second finds the budget (1) used and 1 of 3 healthy
    [5, true, 1, false],
    [19, true, 1, false],
    [20, true, 2, true],
    [100, true, 10, true],
  ];
  for (const [n, first, budget, second] of table) {
    it(`${n} node(s): budget ${budget}, ${first ? 'isolates' : 'never isolates'} one faulty node${first ? `, ${second ? 'and' : 'not'} a second while it is isolated` : ''}`, () => {
      assert.equal(isolationBudget('10%', n), budget);
      const healthyNodes = (k: number) => Array.from({ length: k }, (_, i) => fresh(`ok-${i}`));
      const one = plan([failing('bad-1'), ...healthyNodes(n - 1)], { budget, minHealthy: 0.51 });
      assert.equal(one.isolate.length, first ? 1 : 0, JSON.stringify(one));
      if (n < 2) return;
      const isolated = { ...failing('bad-1'), isolated: true };
      const two = plan([isolated, failing('bad-2'), ...healthyNodes(n - 2)], { budget, minHealthy: 0.51 });
      assert.equal(two.isolate.length, second ? 1 : 0, JSON.stringify(two));
    });
  }
  it('an isolated node healthy again is restored after recoveryAfter, and holds no budget meanwhile', () => {
    const back = { ...fresh('back', { health: { healthy: true, failing: '', stale: false, since: now - 46 * 60_000 } }), isolated: true };
    const p = plan([back, failing('next'), fresh('a'), fresh('b'), fresh('c')], { budget: 1, minHealthy: 0.51, recoveryAfterMs: 45 * 60_000 });
    assert.deepEqual(p.restore, ['back']);
    assert.deepEqual(p.isolate.map((a) => a.name), ['next'], 'the restorable node neither holds the budget nor counts as unhealthy');
    const notYet = { ...back, health: { ...back.health!, since: now - 10 * 60_000 } };
    const q = plan([notYet, failing('next'), fresh('a'), fresh('b'), fresh('c')], { budget: 1, minHealthy: 0.51, recoveryAfterMs: 45 * 60_000 });
    assert.deepEqual([q.restore, q.isolate.map((a) => a.name), q.deferred.map((a) => a.name)], [[], [], ['next']]);
  });
});

describe('planning node isolation', () => {
  it('3 of 10 faulty with a budget of 1: the longest-faulty is isolated, the others deferred', () => {
    const nodes = [...Array.from({ length: 7 }, (_, i) => fresh(`ok-${i}`)), failing('b', 'network', now - 200), stale('a', now - 900), failing('c')];
    const p = plan(nodes);
    assert.deepEqual(p.isolate.map((a) => [a.name, a.cause]), [['a', 'heartbeat']]);
    assert.deepEqual(p.deferred.map((a) => a.name), ['c', 'b']);
    assert.equal(p.deferred[1]!.detail, 'failing: network');
  });

  it('counts nodes already isolated and isolations in flight against the budget', () => {
    const isolated = { ...stale('old'), isolated: true };
    assert.deepEqual(plan([isolated, stale('new'), ...Array.from({ length: 8 }, (_, i) => fresh(`n${i}`))]).isolate, []);
    assert.deepEqual(plan([stale('x'), stale('y'), ...Array.from({ length: 8 }, (_, i) => fresh(`n${i}`))], { budget: 2, inFlight: ['x'] }).isolate.map((a) => a.name), ['y']);
  });

  it('6 of 10 heartbeats stale together: nothing is isolated, not even a node reporting failures', () => {
    const nodes = [...Array.from({ length: 6 }, (_, i) => stale(`s${i}`)), failing('f'), ...Array.from({ length: 3 }, (_, i) => fresh(`n${i}`))];
    const p = plan(nodes, { budget: 10 });
    assert.deepEqual(p.suppressed, { late: 6, reporting: 10 });
    assert.deepEqual(p.isolate, []);
    // Cut off together, they go stale one by one; the first stale one finds the others late.
    const cut = [stale('first'), ...Array.from({ length: 5 }, (_, i) => late(`l${i}`)), ...Array.from({ length: 4 }, (_, i) => fresh(`n${i}`))];
    assert.deepEqual(plan(cut, { budget: 10 }).suppressed, { late: 6, reporting: 10 });
    assert.deepEqual(plan(cut, { budget: 10 }).isolate, []);
    // Most heartbeats late, none stale yet: a failing report waits too.
    assert.deepEqual(plan([failing('f'), ...Array.from({ length: 6 }, (_, i) => late(`l${i}`))], { budget: 10 }).isolate, []);
    // Exactly half is not more than half.
    const half = [...Array.from({ length: 5 }, (_, i) => stale(`s${i}`)), ...Array.from({ length: 5 }, (_, i) => fresh(`n${i}`))];
    assert.equal(plan(half, { budget: 10 }).suppressed, undefined);
    assert.equal(plan(half, { budget: 10 }).isolate.length, 5);
  });

  it('does not judge nodes without an agent, and spends no budget on protected nodes', () => {
    const p = plan([{ name: 'no-agent', isolated: false }, { ...stale('locked', now - 5000), protected: true }, stale('free'), fresh('n1'), fresh('n2'), fresh('n3')]);
    assert.deepEqual(p.isolate.map((a) => a.name), ['free']);
    assert.deepEqual(p.protected.map((a) => a.name), ['locked']);
    assert.equal(p.counts.reporting, 5);
  });

  it('restores an isolated node healthy for the recovery time, only when recovery is on', () => {
    const back = { ...fresh('back'), isolated: true, health: { healthy: true, failing: '', stale: false, since: now - 120_000 } };
    const recent = { ...fresh('recent'), isolated: true, health: { healthy: true, failing: '', stale: false, since: now - 10_000 } };
    const silent = { ...stale('silent'), isolated: true };
    assert.deepEqual(plan([back, recent, silent, fresh('n1'), fresh('n2'), fresh('n3')], { recoveryAfterMs: 60_000 }).restore, ['back']);
    assert.deepEqual(plan([back, fresh('n1')], { recoveryAfterMs: 0 }).restore, []);
  });
});

describe('nodes others are handling, and an unhealthy majority', () => {
  it('reads maintenance from the node: cordoned, or tainted by the cluster autoscaler or Karpenter', () => {
    assert.equal(maintenanceOf({ spec: { unschedulable: true } }), 'cordoned');
    assert.equal(maintenanceOf({ spec: { taints: [{ key: 'ToBeDeletedByClusterAutoscaler' }] } }), 'being removed by cluster-autoscaler');
    assert.equal(maintenanceOf({ spec: { taints: [{ key: 'karpenter.sh/disrupted' }] } }), 'being removed by karpenter');
    assert.equal(maintenanceOf({ spec: { taints: [{ key: 'node.kubernetes.io/unreachable' }] } }), undefined);
    assert.equal(maintenanceOf({}), undefined);
  });

  it('never isolates or defers a node under maintenance, and leaves it out of the majority guard', () => {
    const nodes = [...Array.from({ length: 4 }, (_, i) => fresh(`ok-${i}`)), { ...stale('drained'), maintenance: 'cordoned' }, { ...failing('removed'), maintenance: 'being removed by karpenter' }, failing('bad')];
    const p = plan(nodes, { budget: 3 });
    assert.deepEqual(p.isolate.map((a) => a.name), ['bad']);
    assert.deepEqual([...p.deferred, ...p.protected].map((a) => a.name), []);
    assert.equal(p.counts.maintenance, 2);
    assert.equal(p.counts.reporting, 5);
    // Three stale nodes being drained do not make a stale majority of the other four.
    const draining = [...Array.from({ length: 4 }, (_, i) => fresh(`ok-${i}`)), ...['d1', 'd2', 'd3', 'd4', 'd5'].map((n) => ({ ...stale(n), maintenance: 'cordoned' }))];
    assert.equal(plan(draining).suppressed, undefined);
  });

  it('isolates nothing when fewer than minHealthy of the reporting nodes are healthy (a bad check everywhere)', () => {
    const badRollout = [...Array.from({ length: 6 }, (_, i) => failing(`f-${i}`)), ...Array.from({ length: 4 }, (_, i) => fresh(`ok-${i}`))];
    const p = plan(badRollout, { budget: 5, minHealthy: 0.51 });
    assert.deepEqual(p.tooFewHealthy, { healthy: 4, reporting: 10 });
    assert.deepEqual(p.isolate, []);
    // 3 of 10 faulty: 70% healthy, above 51%: the budget decides.
    const three = [...Array.from({ length: 3 }, (_, i) => failing(`f-${i}`)), ...Array.from({ length: 7 }, (_, i) => fresh(`ok-${i}`))];
    const q = plan(three, { budget: 1, minHealthy: 0.51 });
    assert.equal(q.tooFewHealthy, undefined);
    assert.equal(q.isolate.length, 1);
    assert.equal(plan(badRollout, { budget: 5, minHealthy: 0 }).isolate.length, 5, 'minHealthy 0 turns the guard off');
  });

  it("per node pool: a pool under minHealthy keeps its nodes while another pool's faulty node is isolated", () => {
    // 12 nodes, 75% healthy overall: the cluster-wide guard lets isolation go on. Pool
    // "gpu" (a bad driver image) has 3 of 4 failing: its nodes are held. Pool "general"
    // has 1 of 8 failing: isolated.
    const nodes = [
      ...['g1', 'g2', 'g3'].map((n) => ({ ...failing(n), group: 'gpu' })),
      { ...fresh('g4'), group: 'gpu' },
      { ...failing('n1', 'kubelet', now - 100), group: 'general' },
      ...Array.from({ length: 7 }, (_, i) => ({ ...fresh(`n-ok-${i}`), group: 'general' })),
    ];
    const p = plan(nodes, { budget: 5, minHealthy: 0.51 });
    assert.equal(p.tooFewHealthy, undefined);
    assert.deepEqual(p.isolate.map((a) => a.name), ['n1']);
    assert.deepEqual(p.tooFewHealthyGroups.map((g) => [g.group, g.healthy, g.reporting, g.held.map((a) => a.name).sort()]), [['gpu', 1, 4, ['g1', 'g2', 'g3']]]);
    // Without groups (no label set): the same nodes, the budget decides alone.
    const ungrouped = plan(nodes.map(({ group: _g, ...n }) => n), { budget: 5, minHealthy: 0.51 });
    assert.equal(ungrouped.isolate.length, 4);
    assert.deepEqual(ungrouped.tooFewHealthyGroups, []);
    // Nodes without the label are judged only by the cluster-wide share.
    const mixed = plan([...nodes.slice(0, 4), { ...failing('x'), group: undefined }, ...nodes.slice(4)], { budget: 5, minHealthy: 0.51 });
    assert.deepEqual(mixed.isolate.map((a) => a.name).sort(), ['n1', 'x']);
  });
});
