// What the node controller sees of each node before it plans (src/nodes/node-views.ts):
// whose fault a silent agent is, from the node and its agent pods alone.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { NodeHealth } from '../../src/core/nodehealth.js';
import { AGENT_COMPONENT_LABEL, nodeEvidence, nodeViews } from '../../src/nodes/node-views.js';

const NOW = Date.parse('2026-12-07T12:00:00Z');
const node = (name: string, ready: 'True' | 'False' | 'Unknown', extra: Partial<V1Node> = {}): V1Node => ({
  metadata: { name, labels: { pool: 'a' } },
  status: { conditions: [{ type: 'Ready', status: ready, reason: ready === 'Unknown' ? 'NodeStatusUnknown' : undefined }] },
  ...extra,
});
const agentPod = (phase: string, ready: boolean, readyForMs: number, deleting = false): V1Pod => ({
  metadata: { name: 'sickbay-agent-x', labels: { [AGENT_COMPONENT_LABEL]: 'agent' }, ...(deleting ? { deletionTimestamp: new Date(NOW) } : {}) },
  status: { phase, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: new Date(NOW - readyForMs) }] },
});
const DEADLINE = 30_000;

describe('whose fault a silent agent is', () => {
  it("the node's, when its kubelet is not reporting either", () => {
    assert.match(nodeEvidence(node('n', 'Unknown'), [], DEADLINE, NOW) ?? '', /kubelet is not reporting either \(Ready Unknown: NodeStatusUnknown\)/);
    assert.match(nodeEvidence(node('n', 'False'), [], DEADLINE, NOW) ?? '', /Ready False/);
  });

  it("the node's, when its agent pod has been Running and Ready past the deadline and still says nothing (the node cannot reach the API server)", () => {
    assert.match(nodeEvidence(node('n', 'True'), [agentPod('Running', true, DEADLINE + 1)], DEADLINE, NOW) ?? '', /agent pod sickbay-agent-x has been Running and Ready since .* yet is silent/);
  });

  it("nobody's that sickbay may act on, when the agent is away: missing (a changed nodeSelector), starting or crash-looping (an upgrade), Ready only lately, or being replaced", () => {
    for (const [what, pods] of [
      ['no agent pod', []],
      ['an agent pod starting', [agentPod('Pending', false, 0)]],
      ['an agent pod not Ready (crash loop)', [agentPod('Running', false, DEADLINE * 10)]],
      ['an agent pod Ready only since the deadline began', [agentPod('Running', true, DEADLINE - 1)]],
      ['an agent pod being deleted (a rollout)', [agentPod('Running', true, DEADLINE * 10, true)]],
    ] as Array<[string, V1Pod[]]>) {
      assert.equal(nodeEvidence(node('n', 'True'), pods, DEADLINE, NOW), undefined, what);
    }
  });
});

describe('nodeViews', () => {
  const health = (healthy: boolean, intervalSeconds = 10): NodeHealth => ({ metadata: { name: 'x' }, status: { healthy, failing: healthy ? '' : 'kubelet', heartbeatIntervalSeconds: intervalSeconds } }) as NodeHealth;
  const settings = { heartbeatIntervalMs: 10_000, missedHeartbeats: 3, minHealthyGroupLabel: 'pool' };

  it('judges each heartbeat by when this process saw it change, and takes the evidence only for a stale one', () => {
    const nodes = [node('fresh', 'True'), node('stale-away', 'True'), node('stale-down', 'Unknown'), node('no-agent', 'True'), node('locked', 'True')];
    const seen = new Map([
      ['fresh', { at: NOW - 5_000 }],
      ['stale-away', { at: NOW - 31_000 }],
      ['stale-down', { at: NOW - 31_000 }],
      ['locked', { at: NOW - 1_000 }],
    ]);
    const { views, nextDeadline } = nodeViews(
      nodes,
      (name) => (name === 'no-agent' ? undefined : health(true)),
      () => [],
      { seen, unhealthySince: new Map(), locks: new Map([['locked', { until: NOW + 60_000 }]]) },
      settings,
      NOW,
    );
    const by = Object.fromEntries(views.map((v) => [v.name, v]));
    assert.equal(by.fresh!.health?.stale, false);
    assert.equal(by['stale-away']!.health?.stale, true);
    assert.equal(by['stale-away']!.health?.nodeEvidence, undefined, 'an agent away: no evidence against the node');
    assert.match(by['stale-down']!.health?.nodeEvidence ?? '', /kubelet is not reporting/);
    assert.equal(by['no-agent']!.health, undefined, 'no NodeHealth: not judged');
    assert.equal(by.locked!.protected, true);
    assert.equal(by.fresh!.group, 'a');
    // The next plan: the earliest deadline of a heartbeat not yet stale, but a second from now at the latest.
    assert.equal(nextDeadline, NOW + 1_000);
  });
});
