// Which nodes the node controller isolates, defers or restores: a pure function of what
// it knows, so every guard is tested without a cluster.

export interface NodeView {
  name: string;
  /** Carries the sickbay.io/isolated NoExecute taint. */
  isolated: boolean;
  /** Its protection lock is known to be valid: not isolated, and no budget spent on it. */
  protected?: boolean;
  /**
   * Someone else is handling it (cordoned or drained, or being removed by the cluster
   * autoscaler or Karpenter): never isolated, never alerted on, and left out of the
   * shares the guards count. See maintenanceOf.
   */
  maintenance?: string;
  /** Its group for the minHealthy guard (its node pool: the value of the grouping label), when grouping is on. */
  group?: string;
  /** Its NodeHealth, when there is one (a node without an agent is not judged). */
  health?: {
    healthy: boolean;
    failing: string;
    /** The heartbeat is older than the allowed number of intervals. */
    stale: boolean;
    /**
     * With a stale heartbeat: what shows the node itself is at fault, not only its agent
     * (its kubelet not reporting either, or the agent pod Running and Ready yet silent).
     * Without it, a silent agent is an agent that is away (an upgrade, an OOM, a crash
     * loop, a changed nodeSelector): reported, never a reason to isolate.
     */
    nodeEvidence?: string;
    /**
     * At least one heartbeat missed (older than 1.5 intervals; stale implies late). Agents
     * cut off together go stale one by one over an interval, but are all late by the time
     * the first is stale: the majority guard counts late ones.
     */
    late?: boolean;
    /** Since when (ms) the node counts as faulty: the missed deadline, or the unhealthy report seen. */
    faultySince?: number;
    /** When the agent's verdict last changed (ms), for recovery. */
    since?: number;
  };
}

export interface NodePlanInput {
  nodes: NodeView[];
  /** How many nodes may be isolated at once, those isolated already included. */
  budget: number;
  /** Nodes with an isolation in flight: they count against the budget. */
  inFlight: ReadonlySet<string>;
  now: number;
  /** 0: never restore by itself. */
  recoveryAfterMs: number;
  /**
   * Node Healthcheck's minHealthy: below this share (0-1) of healthy, fresh nodes among
   * those reporting, isolate nothing (a bad check or a bad agent rollout makes every node
   * look faulty). 0: no such guard.
   */
  minHealthy?: number;
}

export interface NodeAction {
  name: string;
  /** "heartbeat" or "checks" */
  cause: 'heartbeat' | 'checks';
  detail: string;
  faultySince: number;
}

export interface NodePlan {
  /** Nodes whose agent is silent while nothing says the node is at fault: reported, not isolated. */
  agentDown: string[];
  /** More than half of all heartbeats are late: the fault is more likely ours; nothing is isolated. */
  suppressed?: { late: number; reporting: number };
  /** Fewer than minHealthy of the reporting nodes are healthy: nothing is isolated. */
  tooFewHealthy?: { healthy: number; reporting: number };
  /** Groups (node pools) under minHealthy: their faulty nodes are held, the other groups' isolated as usual. */
  tooFewHealthyGroups: { group: string; healthy: number; reporting: number; held: NodeAction[] }[];
  isolate: NodeAction[];
  /** Faulty but over the budget. */
  deferred: NodeAction[];
  /** Faulty but protected by a valid lock. */
  protected: NodeAction[];
  restore: string[];
  counts: { reporting: number; late: number; stale: number; unhealthy: number; isolated: number; maintenance: number; agentDown: number };
}

/** Taints of the node removers: the cluster autoscaler's and Karpenter's. */
const REMOVAL_TAINTS: Record<string, string> = {
  ToBeDeletedByClusterAutoscaler: 'cluster-autoscaler',
  DeletionCandidateOfClusterAutoscaler: 'cluster-autoscaler',
  'karpenter.sh/disrupted': 'karpenter',
  'karpenter.sh/disruption': 'karpenter',
};

/** Why someone else is handling this node (cordoned, or being removed), or undefined. */
export function maintenanceOf(node: { spec?: { unschedulable?: boolean; taints?: Array<{ key: string }> } }): string | undefined {
  for (const t of node.spec?.taints ?? []) if (REMOVAL_TAINTS[t.key]) return `being removed by ${REMOVAL_TAINTS[t.key]}`;
  if (node.spec?.unschedulable) return 'cordoned';
  return undefined;
}

/**
 * The heartbeat interval a node is judged by: its NodeHealth's own when it states a
 * usable one, never longer than the configured one. The agent writes the NodeHealth, so
 * an agent that says "every hour" must not buy its node an hour of silence.
 */
export function heartbeatIntervalMs(statedSeconds: unknown, configuredMs: number): number {
  const s = Number(statedSeconds);
  return Number.isFinite(s) && s > 0 ? Math.min(s * 1000, configuredMs) : configuredMs;
}

/**
 * Where a node's heartbeats stand at `now`, from when the last one was seen: stale past
 * the deadline (`missed` intervals later), late past one and a half intervals (a warning,
 * not a fault).
 */
export function heartbeatState(lastSeenAt: number, intervalMs: number, missed: number, now: number): { deadline: number; stale: boolean; late: boolean } {
  const deadline = lastSeenAt + missed * intervalMs;
  return { deadline, stale: now > deadline, late: now > lastSeenAt + 1.5 * intervalMs };
}

/** "10%" of the nodes (rounded down) or a count; never less than 1. */
export function isolationBudget(spec: string, nodeCount: number): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(spec);
  if (!m) throw new Error(`not a budget: ${JSON.stringify(spec)} (use a count like 2 or a share like 10%)`);
  const n = Number(m[1]);
  return Math.max(1, m[2] ? Math.floor((n / 100) * nodeCount) : Math.floor(n));
}

export function planNodes(input: NodePlanInput): NodePlan {
  const maintenance = input.nodes.filter((n) => n.maintenance && !n.isolated);
  const reporting = input.nodes.filter((n) => n.health && !(n.maintenance && !n.isolated));
  const stale = reporting.filter((n) => n.health!.stale);
  const late = reporting.filter((n) => n.health!.stale || n.health!.late);
  const unhealthy = reporting.filter((n) => !n.health!.stale && !n.health!.healthy);
  const agentDown = stale.filter((n) => !n.health!.nodeEvidence && !n.isolated);
  const isolatedNow = input.nodes.filter((n) => n.isolated);
  const counts = { reporting: reporting.length, late: late.length, stale: stale.length, unhealthy: unhealthy.length, isolated: isolatedNow.length, maintenance: maintenance.length, agentDown: agentDown.length };
  const plan: NodePlan = { agentDown: agentDown.map((n) => n.name), isolate: [], deferred: [], protected: [], restore: [], tooFewHealthyGroups: [], counts };

  if (input.recoveryAfterMs > 0) {
    for (const n of isolatedNow) {
      const h = n.health;
      if (h && !h.stale && h.healthy && h.since !== undefined && input.now - h.since >= input.recoveryAfterMs) plan.restore.push(n.name);
    }
  }
  // A node about to be restored is healthy: it holds no budget and counts as healthy.
  const restoring = new Set(plan.restore);

  if (late.length * 2 > reporting.length) {
    plan.suppressed = { late: late.length, reporting: reporting.length };
    return plan;
  }
  const isHealthy = (n: NodeView) => (!n.isolated || restoring.has(n.name)) && n.health!.healthy && !n.health!.stale;
  const healthy = reporting.filter(isHealthy).length;
  if (input.minHealthy && reporting.length > 0 && healthy < input.minHealthy * reporting.length) {
    plan.tooFewHealthy = { healthy, reporting: reporting.length };
    return plan;
  }
  // The same guard within each node pool (as a Node Healthcheck per node selector): a bad
  // pool (its image, its zone) keeps its nodes while the rest of the cluster is fine.
  const heldGroups = new Map<string, { healthy: number; reporting: number }>();
  if (input.minHealthy) {
    const groups = new Map<string, NodeView[]>();
    for (const n of reporting) if (n.group !== undefined) groups.set(n.group, [...(groups.get(n.group) ?? []), n]);
    for (const [group, members] of groups) {
      const h = members.filter(isHealthy).length;
      if (h < input.minHealthy * members.length) heldGroups.set(group, { healthy: h, reporting: members.length });
    }
  }

  const faulty: NodeAction[] = [...stale.filter((n) => n.health!.nodeEvidence), ...unhealthy]
    .filter((n) => !n.isolated)
    .map((n) => ({
      name: n.name,
      cause: n.health!.stale ? ('heartbeat' as const) : ('checks' as const),
      detail: n.health!.stale ? `no heartbeat, and ${n.health!.nodeEvidence}` : `failing: ${n.health!.failing || 'unhealthy'}`,
      faultySince: n.health!.faultySince ?? input.now,
    }))
    .sort((a, b) => a.faultySince - b.faultySince || a.name.localeCompare(b.name));

  let room = input.budget - isolatedNow.filter((n) => !input.inFlight.has(n.name) && !restoring.has(n.name)).length - input.inFlight.size;
  const isProtected = new Set(input.nodes.filter((n) => n.protected).map((n) => n.name));
  const groupOf = new Map(input.nodes.map((n) => [n.name, n.group]));
  for (const action of faulty) {
    if (input.inFlight.has(action.name)) continue;
    const group = groupOf.get(action.name);
    const held = group !== undefined ? heldGroups.get(group) : undefined;
    if (held) {
      let entry = plan.tooFewHealthyGroups.find((g) => g.group === group);
      if (!entry) plan.tooFewHealthyGroups.push((entry = { group: group!, ...held, held: [] }));
      entry.held.push(action);
      continue;
    }
    if (isProtected.has(action.name)) plan.protected.push(action);
    else if (room > 0) {
      plan.isolate.push(action);
      room--;
    } else plan.deferred.push(action);
  }
  return plan;
}
