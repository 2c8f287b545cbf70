// The node controller (leader only): isolates a node whose agent reports it unhealthy or
// whose heartbeat is older than N intervals, with the NoExecute taint that makes
// kube-controller-manager evict its pods, under three guards: the per-node protection
// lock, a cluster-wide budget, and "more than half of the heartbeats stale at once means
// the fault is on our side".
//
// Staleness is judged by when this process saw a heartbeat change, not by the time the
// agent wrote in it (the kube-controller-manager's node lifecycle controller does the
// same): clocks may differ, and a new leader gives every node a full deadline.
import type { NodeControllerConfig } from '../core/config.js';
import { ControllerBase, type ControllerDeps } from '../kube/controller-base.js';
import { CoordinationV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { callWithin, codeOf, errorText } from '../kube/api.js';
import { sleep } from '../util/wait.js';
import { Informer } from '../kube/informer.js';
import { NODE_TAINT_ISOLATED } from '../core/names.js';
import { isIsolated, isolateNode, listLocks, lockValid, readLock, releaseLock, restoreNode, setLock, setLockPhase } from './node-actions.js';
import { NODEHEALTH_GROUP, NODEHEALTH_PATH, NODEHEALTH_PLURAL, NODEHEALTH_VERSION, type NodeHealth } from '../core/nodehealth.js';
import { isolationBudget, type NodeAction, planNodes } from './node-policy.js';
import { type PostQuarantineStep } from '../kube/steps.js';
import { NodeNotices } from './node-notices.js';
import { AGENT_COMPONENT_LABEL, MAX_SPACING_MS, nodeViews } from './node-views.js';
import { isQuarantined } from '../kube/pods.js';
import { errorDetail } from '../kube/api.js';

export const NODE_CONTROLLER_IDENTITY = 'sickbay-node-controller';
/** A lock known valid is re-read at most this often (someone may lift it by hand). */
const LOCK_RECHECK_MS = 30_000;
/** Evaluations are coalesced to at most one per this many ms. */
const MIN_SPACING_MS = 50;

export class NodeController extends ControllerBase<NodeControllerConfig> {
  readonly healths: Informer<NodeHealth>;
  private readonly coord: CoordinationV1Api;
  private readonly custom: CustomObjectsApi;
  /** When this process saw each node's heartbeat change. */
  private readonly observed = new Map<string, { beat: string; at: number }>();
  private readonly unhealthySince = new Map<string, number>();
  private readonly inFlight = new Set<string>();
  /** Since when each node whose agent is away has had no agent pod at all. */
  private readonly agentGone = new Map<string, number>();
  /** NodeHealth removals on their way (not isolations: they hold no budget). */
  private readonly cleaning = new Set<string>();
  private readonly locks = new Map<string, { until: number; checkedAt: number }>();
  /** What it tells people, each thing once (node-notices.ts). */
  private readonly notices: NodeNotices;
  private active = false;
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;
  private lastEval = 0;

  private signal?: AbortSignal;

  /**
   * `registry`: the pods of a node it isolates leave the service registries at once, as a
   * quarantined pod does (with the same watch against re-registration), not only when
   * their eviction ends.
   */
  constructor(
    deps: ControllerDeps<NodeControllerConfig>,
    private readonly registry?: PostQuarantineStep,
  ) {
    super(deps);
    // SICKBAY_NODE_DRY_RUN alone makes the node controller's Events dry too.
    this.events.dryRun = deps.config.dryRun;
    this.notices = new NodeNotices(this.events, deps.metrics, deps.log, deps.config, (name) => this.cache.nodes.get(name)?.metadata?.uid);
    const { kc, config, log, metrics } = deps;
    this.coord = kc.makeApiClient(CoordinationV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.healths = new Informer<NodeHealth>(kc, { resource: 'nodehealths', path: NODEHEALTH_PATH, resyncMs: config.resyncMs, log, metrics });
    const observe = (h: NodeHealth) => {
      this.observe(h);
      this.schedule(0);
    };
    this.healths.on({
      add: observe,
      update: observe,
      delete: (h) => {
        this.observed.delete(h.metadata?.name ?? '');
        this.unhealthySince.delete(h.metadata?.name ?? '');
      },
    });
    this.cache.nodes.on({
      update: (n, old) => {
        if (isIsolated(n) === isIsolated(old)) return;
        this.schedule(0);
        if (isIsolated(old)) this.endRegistryWatches(n.metadata?.name ?? '');
      },
      delete: (n) => this.forget(n.metadata?.name ?? ''),
    }, deps.term);
  }

  private observe(h: NodeHealth, now = Date.now()) {
    const name = h.metadata?.name ?? '';
    const beat = h.status?.heartbeatTime ?? '';
    const prev = this.observed.get(name);
    if (!prev || prev.beat !== beat) this.observed.set(name, { beat, at: now });
    if (h.status?.healthy === false) {
      if (!this.unhealthySince.has(name)) this.unhealthySince.set(name, now);
    } else this.unhealthySince.delete(name);
  }

  private forget(name: string) {
    this.observed.delete(name);
    this.unhealthySince.delete(name);
    this.locks.delete(name);
    this.notices.forget(name);
    this.agentGone.delete(name);
  }

  /** Waits until NodeHealths can be listed: the CRD may be installed after sickbay. */
  private async waitForCrd(signal: AbortSignal) {
    let said = false;
    while (!signal.aborted) {
      try {
        await callWithin(10_000, 'NodeHealth list', (o) => this.custom.listClusterCustomObject({ group: NODEHEALTH_GROUP, version: NODEHEALTH_VERSION, plural: NODEHEALTH_PLURAL, limit: 1 }, o));
        if (said) this.log.info('the NodeHealth CRD is there now; node isolation starts');
        return;
      } catch (err) {
        if (!said) {
          said = true;
          const why = codeOf(err) === 404 ? 'the NodeHealth CRD is not installed' : errorText(err);
          this.log.warn(`cannot list NodeHealths (${why}); node isolation is off until it can, checked every 30 s`);
        }
        await sleep(30_000, signal);
      }
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    this.signal = signal;
    await this.waitForCrd(signal);
    if (signal.aborted) return;
    void this.healths.run(signal);
    // The shared caches have synced (the manager starts leader work after that); the
    // NodeHealth informer is this controller's own.
    await this.healths.waitForSync(signal);
    if (signal.aborted) return;
    await this.finishHalfDone().catch((err) => this.log.warn('could not check for half-done isolations', { error: errorText(err) }));
    if (signal.aborted) return;
    // A new leader: every heartbeat counts as seen now, so each node gets a full deadline.
    const now = Date.now();
    this.observed.clear();
    this.unhealthySince.clear();
    for (const h of this.healths.list()) this.observe(h, now);
    this.active = true;
    this.log.info('node controller running', { nodes: this.cache.nodes.size, reporting: this.healths.size });
    this.schedule(0);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    this.active = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /**
   * A previous leader that died between taking a node's lock and tainting the node left
   * the lock in phase "isolating" on an untainted node: it would keep the node from being
   * isolated for the whole window. Tainted after all: the lock is marked isolated.
   * Untainted: the lock is given back, and the node is judged afresh like any other.
   */
  private async finishHalfDone() {
    const ns = this.config.namespace;
    for (const lock of await listLocks(this.coord, ns)) {
      if (lock.holder !== NODE_CONTROLLER_IDENTITY || lock.phase !== 'isolating' || !lockValid(lock)) continue;
      if (isIsolated(this.cache.nodes.get(lock.node))) {
        await setLockPhase(this.coord, ns, lock, 'isolated');
        this.log.info('a previous leader isolated this node but did not mark its lock; marked now', { node: lock.node });
        continue;
      }
      if (this.config.dryRun) {
        this.notices.say(lock.node, 'WouldReleaseLock', () => ({ type: 'Normal', message: 'dry run: would give back the lock of an isolation a previous leader did not finish' }));
        continue;
      }
      await releaseLock(this.coord, ns, lock);
      this.metrics.nodeIsolations.inc({ cause: 'half-done', result: 'lock-released' });
      this.log.warn('a previous leader took this node\'s lock but did not taint it: lock given back, the node is judged afresh', { node: lock.node });
      await this.events.record(this.notices.nodeRef(lock.node), 'Normal', 'IsolationLockReleased', 'a previous sickbay leader took the protection lock but stopped before tainting the node; the lock is given back and the node is judged afresh');
    }
  }

  private schedule(delayMs: number) {
    if (!this.active) return;
    const at = Math.max(Date.now() + delayMs, this.lastEval + MIN_SPACING_MS);
    if (this.timer && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      try {
        this.evaluate();
      } catch (err) {
        this.log.error('node evaluation failed', { error: errorDetail(err) });
        this.schedule(MAX_SPACING_MS);
      }
    }, Math.max(0, at - Date.now()));
  }

  /** Builds the view, plans, acts, and schedules the next evaluation at the next deadline. */
  evaluate() {
    if (!this.active || !this.leading()) return;
    const now = Date.now();
    this.lastEval = now;
    const { views, nextDeadline } = nodeViews(
      this.cache.nodes.list(),
      (name) => this.healths.get(name),
      (name) => this.agentPodsOn(name),
      { seen: this.observed, unhealthySince: this.unhealthySince, locks: this.locks },
      this.config,
      now,
    );
    const plan = planNodes({
      nodes: views,
      budget: isolationBudget(this.config.isolationBudget, views.length),
      inFlight: this.inFlight,
      now,
      recoveryAfterMs: this.config.recoveryAfterMs,
      minHealthy: this.config.minHealthy,
    });
    for (const [state, n] of Object.entries({ reporting: plan.counts.reporting, late: plan.counts.late, stale: plan.counts.stale, unhealthy: plan.counts.unhealthy, isolated: plan.counts.isolated, maintenance: plan.counts.maintenance, 'agent-down': plan.counts.agentDown })) {
      this.metrics.nodes.set({ state }, n);
    }
    this.notices.endEpisodes(new Set(views.filter((v) => v.health && (v.health.stale || !v.health.healthy) && !v.isolated).map((v) => v.name)));

    if (this.notices.staleMajority(plan.suppressed) === 'resumed') {
      // Agents cut off together come back one by one: as a new leader does, give every
      // node a full deadline from now, or the last few back would be isolated on the way.
      for (const [name, seen] of this.observed) this.observed.set(name, { ...seen, at: now });
      // This plan was made on the old deadlines: plan again on the new ones.
      this.schedule(0);
      return;
    }
    this.notices.minHealthy(plan.tooFewHealthy);
    this.cleanUpNodeHealths(plan.agentDown, now);
    this.notices.heldBack(plan);
    for (const a of plan.protected) {
      const lock = this.locks.get(a.name)!;
      if (now - lock.checkedAt > LOCK_RECHECK_MS) this.startIsolation(a); // re-reads the lock first
      else this.notices.protectedNode(a, new Date(lock.until));
    }
    for (const a of plan.isolate) this.startIsolation(a);
    for (const name of plan.restore) this.startRestore(name);
    this.schedule(Math.max(0, nextDeadline - Date.now()));
  }

  /** sickbay's agent pods on a node (the chart's DaemonSet, in sickbay's namespace). */
  private agentPodsOn(node: string | undefined) {
    return this.cache.podsIn(this.config.namespace).filter((p) => p.spec?.nodeName === node && p.metadata?.labels?.[AGENT_COMPONENT_LABEL] === 'agent');
  }

  /**
   * A node whose agent is away and that has no agent pod at all, for healthCleanupAfterMs:
   * the DaemonSet no longer covers it (a changed nodeSelector). Its NodeHealth would stay
   * stale for ever; it is removed (an agent that comes back creates it again).
   */
  private cleanUpNodeHealths(agentDown: string[], now: number) {
    const down = new Set(agentDown);
    for (const name of this.agentGone.keys()) if (!down.has(name)) this.agentGone.delete(name);
    if (this.config.healthCleanupAfterMs <= 0) return;
    for (const name of agentDown) {
      if (this.agentPodsOn(name).length > 0) {
        this.agentGone.delete(name);
        continue;
      }
      const since = this.agentGone.get(name);
      if (since === undefined) this.agentGone.set(name, now);
      else if (now - since >= this.config.healthCleanupAfterMs) this.startCleanup(name);
    }
  }

  private startCleanup(name: string) {
    const h = this.healths.get(name);
    if (!h || this.cleaning.has(name)) return;
    if (this.config.dryRun) {
      this.notices.say(name, 'WouldRemoveNodeHealth', () => ({ type: 'Normal', message: 'dry run: would remove the stale NodeHealth of a node no agent pod runs on' }));
      return;
    }
    this.cleaning.add(name);
    const minutes = Math.round(this.config.healthCleanupAfterMs / 60_000);
    void callWithin(10_000, 'NodeHealth delete', (o) => this.custom.deleteClusterCustomObject({ group: NODEHEALTH_GROUP, version: NODEHEALTH_VERSION, plural: NODEHEALTH_PLURAL, name, body: { preconditions: { uid: h.metadata?.uid, resourceVersion: h.metadata?.resourceVersion } } }, o))
      .then(async () => {
        this.agentGone.delete(name);
        this.metrics.nodeHealthsRemoved.inc();
        this.log.info('removed the NodeHealth of a node no agent runs on', { node: name });
        await this.events.record(this.notices.nodeRef(name), 'Normal', 'NodeHealthRemoved', `no sickbay agent pod has run on this node for ${minutes} min and its NodeHealth is stale: the agent DaemonSet no longer covers it (its nodeSelector, its tolerations?). The NodeHealth is removed; the node is not judged until an agent reports again`);
      })
      .catch((err) => {
        if (codeOf(err) !== 404 && codeOf(err) !== 409) this.log.warn('could not remove a stale NodeHealth; will try again', { node: name, error: errorText(err) });
      })
      .finally(() => this.cleaning.delete(name));
  }

  private startIsolation(a: NodeAction) {
    if (this.inFlight.has(a.name)) return;
    this.inFlight.add(a.name);
    void this.isolate(a)
      .catch((err) => {
        this.metrics.reconcileErrors.inc({ controller: 'node' });
        this.log.warn('node isolation failed; will try again', { node: a.name, error: errorText(err) });
      })
      .finally(() => {
        this.inFlight.delete(a.name);
        this.schedule(200);
      });
  }

  private async isolate(a: NodeAction) {
    const ns = this.config.namespace;
    const lock = await readLock(this.coord, ns, a.name);
    if (lockValid(lock)) {
      this.locks.set(a.name, { until: lock!.until.getTime(), checkedAt: Date.now() });
      this.notices.protectedNode(a, lock!.until);
      return;
    }
    this.locks.delete(a.name);
    const dryRun = this.config.dryRun;
    if (dryRun) {
      this.notices.say(a.name, 'WouldIsolate', () => {
        this.metrics.nodeIsolations.inc({ cause: a.cause, result: 'dry-run' });
        return { type: 'Normal', message: `dry run: would isolate the node (${a.detail})` };
      });
      return;
    }
    const node = this.cache.nodes.get(a.name);
    if (!node || isIsolated(node)) return;
    const taken = await setLock(this.coord, ns, a.name, {
      durationMs: this.config.lockDurationMs,
      holder: NODE_CONTROLLER_IDENTITY,
      reason: `isolated: ${a.detail}`,
      ifFree: true,
      phase: 'isolating',
    });
    this.locks.set(a.name, { until: taken.lock.until.getTime(), checkedAt: Date.now() });
    if (taken.result === 'held') {
      this.notices.protectedNode(a, taken.lock.until);
      return;
    }
    let updated;
    try {
      // The term may have ended while the lock was taken: the next leader decides.
      if (!this.leading()) throw new Error('leadership ended before the taint');
      updated = await isolateNode(this.core, node, a.cause === 'heartbeat' ? 'heartbeat-stale' : 'checks-failing');
    } catch (err) {
      // Not isolated: the lock was taken for nothing and would keep the node from being
      // isolated for the whole window. Give it back; the next evaluation tries again.
      this.locks.delete(a.name);
      await releaseLock(this.coord, ns, taken.lock).catch((e) => this.log.warn('could not release the lock of a failed isolation', { node: a.name, error: errorText(e) }));
      throw err;
    }
    this.cache.nodes.writeThrough(updated);
    // Off the Event's path: a lock left "isolating" on a tainted node is marked by the next leader.
    void setLockPhase(this.coord, ns, taken.lock, 'isolated').catch((err) => this.log.warn('could not mark the lock isolated; the next leader will', { node: a.name, error: errorText(err) }));
    const took = Math.max(0, Date.now() - a.faultySince);
    this.metrics.nodeIsolations.inc({ cause: a.cause, result: 'isolated' });
    this.metrics.timeToIsolate.observe(took / 1000);
    const message = `isolated (${a.detail}): tainted ${NODE_TAINT_ISOLATED}:NoExecute, its pods are evicted; protected from another isolation until ${taken.lock.until.toISOString()}`;
    this.log.warn('node isolated', { node: a.name, cause: a.cause, detail: a.detail, msAfterDeadline: took });
    // The registries first: the taint sets off the evictions at once, and an Event write
    // (which waits its turn behind the process's Event gate, up to its own deadline) let
    // the pods be evicted before their entries were looked at (a CI run found them left).
    this.deregisterPodsOn(a.name);
    await this.events.record(this.notices.nodeRef(a.name), 'Warning', 'NodeIsolated', message);
  }

  /** Until its pods are gone, consumers still call them: remove them from the registries now. */
  private deregisterPodsOn(node: string) {
    const signal = this.signal;
    if (!this.registry || !signal) return;
    // Pods being evicted too: they serve until they exit, and consumers still call them.
    const pods = [...this.cache.pods.list()].filter((p) => p.spec?.nodeName === node && this.cache.isOptedIn(p.metadata?.namespace ?? ''));
    if (pods.length === 0) return;
    this.log.info('removing the pods of an isolated node from the service registries', { node, pods: pods.length });
    for (const pod of pods) {
      this.registry.run(pod, signal).catch((err) => this.log.warn('registry deregistration of a pod on an isolated node failed', { node, pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, error: errorText(err) }));
    }
  }

  /**
   * A node restored (by recovery or by `sickbay node restore`): the pods still on it that
   * are not quarantined (they tolerated the taint) may register again. Their watch against
   * re-registration, started at the isolation, ends; a quarantined pod's stays.
   */
  private endRegistryWatches(node: string) {
    if (!this.registry?.forget) return;
    let ended = 0;
    for (const p of this.cache.pods.list()) {
      if (p.spec?.nodeName !== node || isQuarantined(p)) continue;
      this.registry.forget(p);
      ended++;
    }
    if (ended) this.log.info('node restored: its pods may register again', { node, pods: ended });
  }

  private startRestore(name: string) {
    if (this.inFlight.has(name)) return;
    this.inFlight.add(name);
    void (async () => {
      if (this.config.dryRun) {
        this.notices.say(name, 'WouldRestore', () => ({ type: 'Normal', message: 'dry run: would restore the node (healthy again)' }));
        return;
      }
      if (await restoreNode(this.core, name)) {
        this.metrics.nodeRestores.inc({ by: 'recovery' });
        this.log.info('node restored: healthy again', { node: name });
        await this.events.record(this.notices.nodeRef(name), 'Normal', 'NodeRestored', `healthy for ${Math.round(this.config.recoveryAfterMs / 1000)} s: taint and label removed`);
      }
    })()
      .catch((err) => this.log.warn('node restore failed; will try again', { node: name, error: errorText(err) }))
      .finally(() => {
        this.inFlight.delete(name);
        this.schedule(200);
      });
  }
}
