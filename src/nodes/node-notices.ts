// What the node controller tells people, each thing once: a node's Event per episode (its
// last reason said is not said again until the node is fine, isolated or gone), and the
// cluster-wide suspensions of isolation (the stale-majority and minHealthy guards) when
// they begin and end, on sickbay's Lease. Each Event is logged with it and each skip
// counted (sickbay_node_isolation_skips_total).
import type { NodeControllerConfig } from '../core/config.js';
import type { EventReason } from '../core/event-reasons.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { type EventRecorder, type ObjectRef, refOf } from '../kube/events.js';
import type { NodeAction, NodePlan } from './node-policy.js';

export class NodeNotices {
  private suppressed = false;
  private tooFewHealthy = false;

  constructor(
    private readonly events: EventRecorder,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly config: Pick<NodeControllerConfig, 'leaderLeaseName' | 'namespace' | 'minHealthy' | 'minHealthyGroupLabel' | 'isolationBudget'>,
    private readonly nodeUid: (name: string) => string | undefined,
  ) {}

  /** A node's episode ends when it is no longer faulty (fine again, or isolated): its Events may be said again. */
  endEpisodes(faultyNow: ReadonlySet<string>) {
    this.events.notices.forget((name) => !faultyNow.has(name));
  }

  forget(name: string) {
    this.events.notices.forget(name);
  }

  /** The last Event reason of a node's episode is said once. */
  say(name: string, reason: EventReason, what: () => { type: 'Normal' | 'Warning'; message: string }) {
    if (!this.events.notices.isNew(name, reason)) return;
    const { type, message } = what();
    this.log.info(message, { node: name, reason });
    void this.events.record(this.nodeRef(name), type, reason, message);
  }

  /**
   * The stale-majority guard as this plan has it: said when it starts; 'resumed' when it
   * has just lifted (the caller gives every node a fresh deadline and plans again).
   */
  staleMajority(suppressed: NodePlan['suppressed']): 'resumed' | undefined {
    if (suppressed) {
      if (!this.suppressed) {
        this.suppressed = true;
        const { late, reporting } = suppressed;
        this.metrics.nodeIsolationSkips.inc({ reason: 'stale-majority' });
        this.log.warn('more than half of the heartbeats are missing at once: isolating no node (the fault is likely on this side)', { late, reporting });
        void this.events.record(this.selfRef(), 'Warning', 'NodeIsolationSuspended', `${late} of ${reporting} node heartbeats are missing at once; sickbay isolates no node until most report again`);
      }
      return undefined;
    }
    if (!this.suppressed) return undefined;
    this.suppressed = false;
    this.log.info('heartbeats are back; node isolation resumes');
    void this.events.record(this.selfRef(), 'Normal', 'NodeIsolationResumed', 'most node heartbeats are fresh again; node isolation resumes');
    return 'resumed';
  }

  /** The minHealthy guard over the whole cluster, said when it starts and when it ends. */
  minHealthy(tooFew: NodePlan['tooFewHealthy']) {
    if (tooFew) {
      if (this.tooFewHealthy) return;
      this.tooFewHealthy = true;
      const { healthy, reporting } = tooFew;
      const min = Math.round(this.config.minHealthy * 100);
      this.metrics.nodeIsolationSkips.inc({ reason: 'too-few-healthy' });
      this.log.warn('fewer nodes are healthy than the minimum: isolating no node (a bad check or agent rollout makes every node look faulty)', { healthy, reporting, minHealthyPercent: min });
      void this.events.record(this.selfRef(), 'Warning', 'NodeIsolationSuspended', `only ${healthy} of ${reporting} reporting nodes are healthy, under the minimum of ${min}%; sickbay isolates no node until more are healthy`);
    } else if (this.tooFewHealthy) {
      this.tooFewHealthy = false;
      this.log.info('enough nodes are healthy again; node isolation resumes');
      void this.events.record(this.selfRef(), 'Normal', 'NodeIsolationResumed', 'enough nodes are healthy again; node isolation resumes');
    }
  }

  /** What the plan holds back, node by node: agents away, nodes held by their group's guard, deferred by the budget. */
  heldBack(plan: Pick<NodePlan, 'agentDown' | 'tooFewHealthyGroups' | 'deferred' | 'counts'>) {
    for (const name of plan.agentDown) {
      this.say(name, 'AgentDown', () => ({
        type: 'Warning',
        message: `no heartbeat from sickbay's agent, but nothing says the node is at fault (its kubelet reports Ready, and no agent pod has been Running and Ready on it past the heartbeat deadline): the agent is away (an upgrade, a crash, a changed nodeSelector), not isolating the node`,
      }));
    }
    const min = Math.round(this.config.minHealthy * 100);
    for (const g of plan.tooFewHealthyGroups) {
      for (const a of g.held) {
        this.say(a.name, 'IsolationHeld', () => {
          this.metrics.nodeIsolationSkips.inc({ reason: 'too-few-healthy-in-group' });
          return {
            type: 'Warning',
            message: `node is faulty (${a.detail}) but only ${g.healthy} of ${g.reporting} reporting nodes with ${this.config.minHealthyGroupLabel}=${g.group} are healthy, under the minimum of ${min}%; none of them is isolated until more are healthy`,
          };
        });
      }
    }
    for (const a of plan.deferred) {
      this.say(a.name, 'IsolationDeferred', () => {
        this.metrics.nodeIsolationSkips.inc({ reason: 'budget' });
        return { type: 'Warning', message: `node is faulty (${a.detail}) but ${plan.counts.isolated} node(s) are isolated already, the budget (${this.config.isolationBudget}, at least 1) allows no more` };
      });
    }
  }

  protectedNode(a: NodeAction, until: Date) {
    this.say(a.name, 'IsolationSkipped', () => {
      this.metrics.nodeIsolationSkips.inc({ reason: 'protected' });
      return { type: 'Warning', message: `node is faulty (${a.detail}) but protected until ${until.toISOString()}; not isolated` };
    });
  }

  nodeRef(name: string): ObjectRef {
    return refOf('Node', { name, uid: this.nodeUid(name) });
  }

  selfRef(): ObjectRef {
    return refOf('Lease', { name: this.config.leaderLeaseName, namespace: this.config.namespace });
  }
}
