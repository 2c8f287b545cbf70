// What the node controller knows of each node at one moment, for the pure plan
// (node-policy.ts): isolated or not, protected, in maintenance, its group, and, from its
// NodeHealth and when this process saw its heartbeat change, healthy, late or stale, and
// (when stale) what shows the node itself at fault rather than its agent. Pure: the
// controller passes what it has observed and the cache's nodes and agent pods.
import type { V1Node } from '@kubernetes/client-node';
import type { NodeHealth } from '../core/nodehealth.js';
import type { AnyPod } from '../kube/pods.js';
import { isIsolated } from './node-actions.js';
import { heartbeatIntervalMs, heartbeatState, maintenanceOf, type NodeView } from './node-policy.js';

/** The label the chart gives the agent DaemonSet's pods (value `agent`), in sickbay's namespace. */
export const AGENT_COMPONENT_LABEL = 'app.kubernetes.io/component';

/** How often a plan is made at the least: a heartbeat's deadline is never missed by more. */
export const MAX_SPACING_MS = 1_000;

export interface Observed {
  /** When this process saw each node's heartbeat change (not the agent's clock). */
  seen: ReadonlyMap<string, { at: number }>;
  /** Since when each node's NodeHealth has said unhealthy. */
  unhealthySince: ReadonlyMap<string, number>;
  /** Each node's protection lock, as last read. */
  locks: ReadonlyMap<string, { until: number }>;
}

export interface ViewSettings {
  heartbeatIntervalMs: number;
  missedHeartbeats: number;
  /** The node label that groups nodes for the minHealthy guard; empty: none. */
  minHealthyGroupLabel: string;
}

/** Every node's view, and when the next heartbeat deadline falls (the next plan). */
export function nodeViews(
  nodes: Iterable<V1Node>,
  healthOf: (name: string) => NodeHealth | undefined,
  agentPodsOn: (node: string) => AnyPod[],
  observed: Observed,
  s: ViewSettings,
  now: number,
): { views: NodeView[]; nextDeadline: number } {
  let nextDeadline = now + MAX_SPACING_MS;
  const views: NodeView[] = [];
  for (const node of nodes) {
    const name = node.metadata?.name ?? '';
    const h = healthOf(name);
    const seen = observed.seen.get(name);
    const lock = observed.locks.get(name);
    const group = s.minHealthyGroupLabel ? node.metadata?.labels?.[s.minHealthyGroupLabel] : undefined;
    const view: NodeView = { name, isolated: isIsolated(node), protected: !!lock && lock.until > now, maintenance: maintenanceOf(node), group };
    if (h && seen) {
      const intervalMs = heartbeatIntervalMs(h.status?.heartbeatIntervalSeconds, s.heartbeatIntervalMs);
      const { deadline, stale, late } = heartbeatState(seen.at, intervalMs, s.missedHeartbeats, now);
      if (!stale) nextDeadline = Math.min(nextDeadline, deadline + 1);
      view.health = {
        healthy: h.status?.healthy !== false,
        failing: h.status?.failing ?? '',
        stale,
        late,
        nodeEvidence: stale ? nodeEvidence(node, agentPodsOn(name), intervalMs * s.missedHeartbeats, now) : undefined,
        faultySince: stale ? deadline : observed.unhealthySince.get(name),
        since: h.status?.since ? Date.parse(h.status.since) : undefined,
      };
    }
    views.push(view);
  }
  return { views, nextDeadline };
}

/**
 * What says a node whose agent is silent is itself at fault: its kubelet not reporting
 * either (kube-controller-manager turns Ready Unknown once the kubelet's Lease is
 * stale), or an agent pod Running and Ready on it for longer than the heartbeat deadline
 * and silent all the same (the node cannot reach the API server). An agent pod that is
 * missing, starting, crash-looping or being replaced says nothing about the node.
 */
export function nodeEvidence(node: V1Node, agentPods: AnyPod[], deadlineMs: number, now: number): string | undefined {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status !== 'True') return `its kubelet is not reporting either (Ready ${ready?.status ?? 'missing'}${ready?.reason ? `: ${ready.reason}` : ''})`;
  for (const p of agentPods) {
    if (p.metadata?.deletionTimestamp) continue;
    const podReady = p.status?.conditions?.find((c) => c.type === 'Ready');
    const readySince = Date.parse(String(podReady?.lastTransitionTime ?? ''));
    if (p.status?.phase === 'Running' && podReady?.status === 'True' && now - readySince > deadlineMs) {
      return `its agent pod ${p.metadata?.name} has been Running and Ready since ${new Date(readySince).toISOString()} yet is silent (the node cannot reach the API server)`;
    }
  }
  return undefined;
}
