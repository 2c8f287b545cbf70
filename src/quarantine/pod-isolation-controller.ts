// The pod isolation controller: a failing pod in an opted-in namespace is taken out of
// its ReplicaSet and Services (so the workload replaces it and traffic stops) and kept,
// a few per workload; the rest are deleted. Level-triggered: every reconcile reads the
// pod as it is now, and the quarantine itself is one patch guarded by resourceVersion,
// so a restart or a failover at any point neither repeats nor loses an action.
import type { QuarantineConfig } from '../core/config.js';
import { ControllerBase, type ControllerDeps } from '../kube/controller-base.js';
import { randomUUID } from 'node:crypto';
import { type V1LabelSelector, type V1Pod } from '@kubernetes/client-node';
import { type ObjectRef } from '../kube/events.js';
import { keyOf } from '../kube/informer.js';
import { codeOf, errorText, jsonPatch, mergePatch } from '../kube/api.js';
import { type ReconcileResult, WorkQueue } from '../kube/workqueue.js';
import type { Logger } from '../core/log.js';
import {
  ANN_EXPIRES_AT,
  ANN_ISOLATE,
  ANN_MAX_QUARANTINED,
  ANN_ORIGINAL_LABELS,
  ANN_OWNER,
  ANN_QUARANTINED_AT,
  ANN_REASON,
  LABEL_STATUS,
  NODE_TAINT_ISOLATED,
  SHIM_PROBE,
  STATUS_QUARANTINED,
} from '../core/names.js';
import { execInPod } from '../kube/exec.js';
import { TokenBucket } from '../util/rate-limiter.js';
import { withDeadline } from '../util/wait.js';
import { admit, decide, type EarlierAction, labelsToStrip, parseMaxQuarantined, quarantineTrigger, type Trigger } from './quarantine-policy.js';
import { type AnyPod, type CachedPod, isPodReady, isQuarantined, nodeAway, type OwnerInfo, wasEverReady } from '../kube/pods.js';
import { podRef } from '../kube/pods.js';
import type { PostQuarantineStep } from '../kube/steps.js';

// Writes are idempotent under their preconditions, so a retry after a timeout is safe.
const API_DEADLINE_MS = 10_000;
const HOLD_TIMEOUT_MS = 5_000;

export class PodIsolationController extends ControllerBase<QuarantineConfig> {
  private readonly queue: WorkQueue;
  private readonly rate: TokenBucket;
  private readonly requestSeen = new Map<string, number>();
  /** Per workload, sickbay's quarantines and evictions of its pods (the back-off window's worth). */
  private readonly actions = new Map<string, Omit<EarlierAction, 'replaced'>[]>();
  /** Pods this process evicted whose deletion the watch has not shown yet (by uid). */
  private readonly evicted = new Set<string>();
  /** Pods whose post-quarantine steps have been started by this leader. */
  private readonly pipelined = new Set<string>();
  /** One Event per (object, reason) per window, so a long systemic failure does not flood. */
  private readonly eventSent = new Map<string, number>();
  /** Pods with a quarantine or delete on its way to the API server, and their workload. */
  private readonly inFlight = new Map<string, { action: 'quarantine' | 'delete'; workload: string }>();
  private signal?: AbortSignal;

  constructor(
    deps: ControllerDeps<QuarantineConfig>,
    private readonly steps: PostQuarantineStep[] = [],
  ) {
    super(deps);
    const { config, log, metrics, cache } = deps;
    this.rate = new TokenBucket(config.ratePerMinute);
    // Workers mostly wait on one API round trip each. 64 lets a burst of 50 failing pods
    // go out at once: with 16, a fifth of a 50-pod burst waited 0.1-1 s for a worker at
    // 10,000 pods (bench/README.md). The rate limit and the guards, not this, bound it.
    this.queue = new WorkQueue((key) => this.reconcile(key), { name: 'pod-isolation', concurrency: 64, log, metrics, canAct: deps.leading });
    const enqueue = (p: CachedPod) => {
      if (this.cache.isOptedIn(p.metadata?.namespace ?? '')) this.queue.add(keyOf(p));
    };
    cache.pods.on({
      add: enqueue,
      update: enqueue,
      delete: (p) => {
        this.pipelined.delete(keyOf(p));
        this.requestSeen.delete(keyOf(p));
        this.evicted.delete(p.metadata?.uid ?? '');
        for (const s of this.steps) s.forget?.(p);
      },
    }, deps.term);
    cache.namespaces.on({
      update: (ns, old) => {
        if (ns.metadata?.labels !== old.metadata?.labels) for (const p of cache.podsIn(ns.metadata?.name ?? '')) enqueue(p);
      },
    }, deps.term);
  }

  async run(signal: AbortSignal) {
    this.signal = signal;
    // The manager starts leader work once the caches have synced; leadership may have
    // just moved here, so act only on a view listed after that.
    await this.cache.relistAll(signal);
    for (const p of this.cache.pods.list()) if (this.cache.isOptedIn(p.metadata?.namespace ?? '')) this.queue.add(keyOf(p));
    this.log.info('pod isolation controller started', { dryRun: this.config.dryRun });
    await this.queue.run(signal);
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const pod = this.cache.pods.get(key);
    if (!pod || pod.metadata?.deletionTimestamp || this.evicted.has(pod.metadata?.uid ?? '')) return; // not found, or going, means done
    const namespace = pod.metadata!.namespace!;
    if (!this.cache.isOptedIn(namespace)) return;
    const log = this.log.child({ pod: key, reconcileId: randomUUID().slice(0, 8) });
    const now = Date.now();

    if (isQuarantined(pod)) return this.reconcileQuarantined(pod, now, log);

    if (pod.metadata?.annotations?.[ANN_ISOLATE] !== undefined && !this.requestSeen.has(key)) this.requestSeen.set(key, now);
    const trigger = quarantineTrigger(pod, now, this.config.notReadyGraceMs, {
      seenReady: this.cache.hasBeenSeenReady(pod),
      firstSeenNotReady: this.cache.firstSeenNotReady(pod),
      requestSeenAt: this.requestSeen.get(key),
      nodeBackAt: this.cache.nodeBackAt(pod.spec?.nodeName),
    });
    log.debug('reconcile', { trigger: trigger.kind, ready: isPodReady(pod), seenReady: this.cache.hasBeenSeenReady(pod) });
    if (trigger.kind === 'none') return;

    // A pod whose node is away is NotReady because the node is: the node's verdict (the
    // taint manager, the node controller) decides, not sickbay's pod rules. Said before
    // any wait, so the Event is there while the node is away, not only after a grace.
    const away = nodeAway(pod.spec?.nodeName, this.cache.nodes.get(pod.spec?.nodeName ?? ''));
    if (away) {
      this.metrics.skips.inc({ reason: 'node-away' });
      log.info('not judging the pod while its node is away', { why: away });
      this.eventOnce(podRef(pod), 'Normal', 'WaitingForNode', `not judged while ${away}: a pod is NotReady because its node is; sickbay leaves it to the node's verdict and looks again when the node is back`);
      return { requeueAfterMs: 5_000 };
    }
    if (trigger.kind === 'wait') return { requeueAfterMs: trigger.afterMs + 10 };

    // Events inform no decision, and the reconcile does not wait for them: a worker is
    // free for the next failing pod as soon as its own write is done.
    return this.act(pod, this.cache.ownerOf(pod), trigger, now, log);
  }

  private async act(pod: CachedPod, owner: OwnerInfo, trigger: Extract<Trigger, { since: number }>, now: number, log: Logger): Promise<ReconcileResult> {
    const key = keyOf(pod);
    const namespace = pod.metadata!.namespace!;
    const ownerRef = `${owner.kind}/${owner.name}`;
    const workload = `${namespace}/${ownerRef}`;
    // The decision reads how many of the workload's pods are quarantined and failing.
    // From here to the reservation below nothing awaits, so two decisions about one
    // workload cannot interleave; the writes they lead to then run side by side, and a
    // pod with a write in flight counts as already done (quarantined, or going).
    const inService = this.cache.inServicePodsOf(namespace, owner).filter((p) => !this.inFlight.has(keyOf(p)) && !this.evicted.has(p.metadata?.uid ?? ''));
    // Failing: NotReady after having been Ready, or named by a person or a monitor
    // (sickbay.io/isolate, or an alert): an alert naming most of a workload is systemic too.
    const failing = inService.filter((p) => (!isPodReady(p) && wasEverReady(p, this.cache.hasBeenSeenReady(p))) || p.metadata?.annotations?.[ANN_ISOLATE] !== undefined).length;
    let quarantinedForOwner = this.cache.quarantinedIn(namespace).filter((p) => p.metadata?.annotations?.[ANN_OWNER] === ownerRef && !p.metadata?.deletionTimestamp).length;
    for (const w of this.inFlight.values()) if (w.action === 'quarantine' && w.workload === workload) quarantinedForOwner++;
    const max = this.maxQuarantined(namespace, owner, log);
    const recent = (this.actions.get(workload) ?? []).filter((a) => now - a.at < this.config.backoffWindowMs);
    this.actions.set(workload, recent);
    // A pod created after an action that has been Ready since: that action's replacement works.
    const readySince = inService.filter((p) => isPodReady(p) || this.cache.hasBeenSeenReady(p)).map((p) => Date.parse(String(p.metadata?.creationTimestamp ?? '')));
    const earlier: EarlierAction[] = recent.map((a) => ({ ...a, replaced: readySince.some((created) => created >= a.at - 1000) }));
    const decision = admit(
      decide({
        owner,
        ownerPods: Math.max(inService.length, 1),
        ownerFailing: Math.max(failing, trigger.kind === 'not-ready' ? 1 : 0),
        failedAt: trigger.failedAt,
        earlier,
        quarantinedForOwner,
        maxQuarantined: max,
        systemicRatio: this.config.systemicFailureRatio,
        backoffAfter: this.config.backoffAfter,
        backoffWindowMs: this.config.backoffWindowMs,
      }),
      () => this.config.dryRun || this.rate.tryTake(),
    );

    log.debug('decided', { decision, inService: inService.length, failing, quarantinedForOwner, max });
    if (decision.action === 'skip') {
      this.metrics.skips.inc({ reason: decision.reason });
      log.info('not quarantining', { reason: decision.reason, message: decision.message });
      if (decision.reason === 'rate-limited') return { requeueAfterMs: Math.max(this.rate.waitMs(), 100) };
      const target = owner.kind === 'Pod' ? podRef(pod) : ownerObjectRef(namespace, owner);
      const reason = decision.reason === 'systemic' ? 'SystemicFailure' : decision.reason === 'backoff' ? 'WorkloadBackOff' : 'QuarantineSkipped';
      this.eventOnce(target, 'Warning', reason, decision.message);
      // Backing off: look again once the oldest action leaves the window.
      if (decision.reason === 'backoff') return { requeueAfterMs: Math.max(recent[0]!.at + this.config.backoffWindowMs - now, 1000) };
      // Re-check later: the failure may stop being systemic.
      return { requeueAfterMs: 10_000 };
    }

    if (this.config.dryRun) {
      this.metrics.skips.inc({ reason: 'dry-run' });
      log.info(`dry run: would ${decision.action} the pod`, { trigger: trigger.reason, owner: ownerRef, ...(decision.action === 'delete' ? { why: decision.reason } : {}) });
      if (decision.action === 'delete') this.eventOnce(podRef(pod), 'Warning', 'WouldDelete', `dry run: would delete this pod instead of quarantining it (${decision.reason}); ${trigger.reason}`);
      else this.eventOnce(podRef(pod), 'Warning', 'WouldQuarantine', `dry run: would take this pod out of service and keep it: ${trigger.reason}`);
      return;
    }

    if (decision.action === 'quarantine' && decision.systemic) {
      log.info('systemic failure: quarantining one pod for diagnosis, deleting nothing', { message: decision.systemic });
      this.eventOnce(ownerObjectRef(namespace, owner), 'Warning', 'SystemicFailure', decision.systemic);
    }
    this.inFlight.set(key, { action: decision.action, workload });
    // Counted for the back-off from the reservation on, so concurrent decisions see it;
    // taken back if the action does not happen.
    const record = { at: now, failedAt: trigger.failedAt, systemic: decision.action === 'quarantine' && !!decision.systemic };
    recent.push(record);
    let acted = false;
    try {
      if (decision.action === 'delete') {
        const evicted = await this.evictPod(pod, `evicted instead of quarantined: ${decision.reason}; the failure was: ${trigger.reason}`, log);
        if (evicted === 'refused') return { requeueAfterMs: 10_000 }; // a PodDisruptionBudget said no: the pod stays, try again later
        if (evicted === 'gone') return; // already going, or another pod by that name: nothing done here
        acted = true;
        if (owner.kind !== 'Pod') void this.events.record(ownerObjectRef(namespace, owner), 'Normal', 'FailingPodDeleted', `pod ${pod.metadata!.name}: ${trigger.reason}; ${decision.reason}`);
        return;
      }
      const done = await this.quarantineAndReport(pod, owner, trigger, now, log);
      acted = done;
      return done && this.config.ttlMs > 0 ? { requeueAfterMs: this.config.ttlMs } : undefined;
    } finally {
      // The write is in the cache now (writeThrough), or it failed and the pod decides again.
      this.inFlight.delete(key);
      if (!acted) recent.splice(recent.indexOf(record), 1);
    }
  }

  /** True once the pod is quarantined (false: it changed meanwhile, or is gone). */
  private async quarantineAndReport(pod: CachedPod, owner: OwnerInfo, trigger: Extract<Trigger, { since: number }>, now: number, log: Logger): Promise<boolean> {
    const namespace = pod.metadata!.namespace!;
    const quarantined = await this.quarantine(pod, owner, trigger.reason, now, log);
    if (!quarantined) return false;
    this.metrics.quarantines.inc({ trigger: trigger.kind });
    this.metrics.timeToQuarantine.observe(Math.max(0, Date.now() - trigger.since) / 1000);
    void this.events.record(podRef(pod), 'Warning', 'Quarantined', `taken out of service and kept for inspection: ${trigger.reason}`);
    if (owner.kind !== 'Pod') {
      void this.events.record(ownerObjectRef(namespace, owner), 'Warning', 'PodQuarantined', `pod ${pod.metadata!.name} quarantined (${trigger.reason}); a replacement is starting`);
    }
    this.startPipeline(quarantined);
    void this.tolerateIsolation(quarantined, log);
    return true;
  }

  private async reconcileQuarantined(pod: CachedPod, now: number, log: Logger): Promise<ReconcileResult> {
    const expires = Date.parse(pod.metadata?.annotations?.[ANN_EXPIRES_AT] ?? '');
    if (!Number.isNaN(expires) && expires <= now) {
      if (this.config.dryRun) {
        log.info('dry run: would delete the expired quarantined pod');
        this.eventOnce(podRef(pod), 'Normal', 'WouldDelete', 'dry run: would delete this quarantined pod, its quarantine expired');
        return;
      }
      await this.deletePod(pod, 'expired', 'quarantine expired', log);
      return;
    }
    // Deregistration and diagnostics act on the pod: not in dry run.
    if (this.config.dryRun) return void log.info('dry run: would deregister and diagnose the quarantined pod');
    this.startPipeline(pod);
    // Quarantined before this toleration was added (an older sickbay, a failed write): add it now.
    if (!tolerates(pod)) {
      const full = await this.core.readNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace! }).catch(() => undefined);
      if (full && isQuarantined(full)) await this.tolerateIsolation(full, log);
    }
    return Number.isNaN(expires) ? undefined : { requeueAfterMs: expires - now + 10 };
  }

  private maxQuarantined(namespace: string, owner: OwnerInfo, log: Logger): number {
    if (owner.kind !== 'Deployment') return this.config.maxQuarantined;
    const raw = this.cache.deployments.get(`${namespace}/${owner.name}`)?.metadata?.annotations?.[ANN_MAX_QUARANTINED];
    const { value, error } = parseMaxQuarantined(raw, this.config.maxQuarantined);
    if (error) log.warn(`ignoring ${ANN_MAX_QUARANTINED} on Deployment ${owner.name}: ${error}`);
    return value;
  }

  /** One merge patch, preconditioned on the resourceVersion the decision was made on. */
  private async quarantine(pod: CachedPod, owner: OwnerInfo, reason: string, now: number, log: Logger): Promise<V1Pod | undefined> {
    const namespace = pod.metadata!.namespace!;
    const labels = pod.metadata?.labels ?? {};
    const selectors: V1LabelSelector[] = [];
    const rs = this.cache.replicaSetOf(pod);
    if (rs?.spec?.selector) selectors.push(rs.spec.selector);
    for (const svc of this.cache.servicesIn(namespace)) if (svc.spec?.selector && Object.keys(svc.spec.selector).length) selectors.push({ matchLabels: svc.spec.selector });
    const strip = labelsToStrip(labels, selectors);
    const original = Object.fromEntries(strip.map((k) => [k, labels[k]!]));
    const body = {
      metadata: {
        resourceVersion: pod.metadata!.resourceVersion,
        labels: { ...Object.fromEntries(strip.map((k) => [k, null])), [LABEL_STATUS]: STATUS_QUARANTINED },
        annotations: {
          [ANN_QUARANTINED_AT]: new Date(now).toISOString(),
          [ANN_REASON]: reason,
          [ANN_OWNER]: `${owner.kind}/${owner.name}`,
          // `never`: kept until a release (SICKBAY_QUARANTINE_TTL never or 0).
          [ANN_EXPIRES_AT]: this.config.ttlMs > 0 ? new Date(now + this.config.ttlMs).toISOString() : 'never',
          [ANN_ORIGINAL_LABELS]: JSON.stringify(original),
        },
      },
    };
    try {
      const patched = await withDeadline(this.core.patchNamespacedPod({ name: pod.metadata!.name!, namespace, body }, mergePatch), API_DEADLINE_MS, 'quarantine patch');
      // The hold reads the liveness probes off the pod as the API returned it: the cached
      // pod keeps no probes, and the hold never ran while it read them there.
      void this.hold(patched, log);
      this.cache.pods.writeThrough(patched);
      log.info('quarantined', { reason, owner: `${owner.kind}/${owner.name}`, removedLabels: strip });
      return patched;
    } catch (err) {
      const code = codeOf(err);
      if (code === 404) return undefined; // gone: done
      // 409: the pod changed since the decision; the newer version is queued and decides again.
      throw new Error(`quarantine patch failed: ${errorText(err)}`);
    }
  }

  /**
   * A quarantined pod is a kept scene: when its node is isolated (often for the very fault
   * that made its pods fail), sickbay's own NoExecute taint must not evict it. It gets a
   * toleration of `sickbay.io/isolated` (a running pod may gain tolerations), from the pod as
   * the API returned it (the cached pod keeps no tolerations but this one). Best effort,
   * re-tried by the next reconcile of the quarantined pod.
   */
  private async tolerateIsolation(pod: V1Pod, log: Logger): Promise<void> {
    const tolerations = pod.spec?.tolerations ?? [];
    if (tolerates(pod)) return;
    const ops = [
      { op: 'test', path: '/metadata/uid', value: pod.metadata!.uid },
      tolerations.length ? { op: 'add', path: '/spec/tolerations/-', value: ISOLATION_TOLERATION } : { op: 'add', path: '/spec/tolerations', value: [ISOLATION_TOLERATION] },
    ];
    try {
      const patched = await withDeadline(this.core.patchNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: ops }, jsonPatch), API_DEADLINE_MS, 'toleration patch');
      this.cache.pods.writeThrough(patched);
      log.debug('the quarantined pod tolerates node isolation');
    } catch (err) {
      if (codeOf(err) === 404 || codeOf(err) === 422) return; // gone, or another pod by that name now
      log.warn('could not add the node isolation toleration to the quarantined pod; an isolation of its node would evict it; retried later', { error: errorText(err) });
    }
  }

  /**
   * A container whose liveness probe sickbay wrapped passes it while the pod is
   * quarantined, as read from the downward API; the kubelet rewrites that file some
   * seconds after the label changes, and a failing liveness probe would restart the
   * container (the scene lost) in between. `probe --hold` makes the pod's liveness checks
   * pass for 120 s from now: sent as soon as the quarantine patch returns, it reaches the
   * container within an exec's round trip. Best effort: the quarantine does not wait on it.
   */
  private hold(pod: V1Pod, log: Logger): Promise<void> {
    const container = pod.spec?.containers?.find((c) => c.livenessProbe?.exec?.command?.[0] === SHIM_PROBE)?.name;
    if (!container) return Promise.resolve();
    const target = { namespace: pod.metadata!.namespace!, pod: pod.metadata!.name!, container };
    return execInPod(this.kc, target, [SHIM_PROBE, '--hold'], HOLD_TIMEOUT_MS).then(
      (r) => {
        if (r.exitCode !== 0) log.warn('could not hold the liveness probe; the kubelet may restart the container before the quarantine label reaches it', { container, error: r.error ?? r.stderr.trim() });
      },
      (err) => void log.warn('could not hold the liveness probe', { container, error: errorText(err) }),
    );
  }

  /**
   * A failing pod beyond the quota leaves through the Eviction API, so the workload's
   * PodDisruptionBudget holds. Refused (429): the pod stays, with an Event.
   */
  private async evictPod(pod: CachedPod, message: string, log: Logger): Promise<'evicted' | 'refused' | 'gone'> {
    const name = pod.metadata!.name!;
    const namespace = pod.metadata!.namespace!;
    try {
      await withDeadline(
        this.core.createNamespacedPodEviction({ name, namespace, body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace }, deleteOptions: { preconditions: { uid: pod.metadata!.uid } } } }),
        API_DEADLINE_MS,
        'pod eviction',
      );
    } catch (err) {
      if (codeOf(err) === 404 || codeOf(err) === 409) return 'gone'; // already gone, or a different pod by that name now
      if (codeOf(err) === 429) {
        this.metrics.skips.inc({ reason: 'disruption-budget' });
        log.info('eviction refused by a PodDisruptionBudget; the pod stays', { pod: keyOf(pod) });
        this.eventOnce(podRef(pod), 'Warning', 'EvictionRefused', `not evicted: its PodDisruptionBudget allows no disruption now (${errorText(err)}); sickbay tries again later`);
        return 'refused';
      }
      throw new Error(`eviction failed: ${errorText(err)}`);
    }
    // The Eviction API answers with a Status, not the pod: until the watch shows it
    // terminating, no decision may take it for a failing pod again.
    this.evicted.add(pod.metadata!.uid!);
    this.metrics.podDeletions.inc({ reason: 'over-quota' });
    log.info('evicted pod', { reason: 'over-quota', message });
    void this.events.record(podRef(pod), 'Warning', 'FailingPodDeleted', message);
    return 'evicted';
  }

  private async deletePod(pod: CachedPod, reason: 'expired', message: string, log: Logger) {
    try {
      const deleted = await withDeadline(
        this.core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { preconditions: { uid: pod.metadata!.uid } } }),
        API_DEADLINE_MS,
        'pod delete',
      );
      if (deleted.metadata?.deletionTimestamp) this.cache.pods.writeThrough(deleted);
    } catch (err) {
      if (codeOf(err) === 404 || codeOf(err) === 409) return; // already gone, or a different pod by that name now
      throw new Error(`delete failed: ${errorText(err)}`);
    }
    this.metrics.podDeletions.inc({ reason });
    log.info('deleted pod', { reason, message });
    void this.events.record(podRef(pod), 'Warning', 'QuarantineExpired', message);
  }

  private startPipeline(pod: AnyPod) {
    const key = keyOf(pod);
    if (this.steps.length === 0 || this.pipelined.has(key) || !this.signal) return;
    this.pipelined.add(key);
    for (const step of this.steps) {
      step.run(pod, this.signal).catch((err) => this.log.error('post-quarantine step failed; the quarantine stands', { pod: key, step: step.name, error: errorText(err) }));
    }
  }

  private eventOnce(ref: ObjectRef, type: 'Normal' | 'Warning', reason: string, message: string) {
    const k = `${ref.kind}/${ref.namespace}/${ref.name}/${reason}`;
    const last = this.eventSent.get(k) ?? 0;
    if (Date.now() - last < 60_000) return;
    this.eventSent.set(k, Date.now());
    void this.events.record(ref, type, reason, message);
  }
}

/** Tolerated for as long as the quarantine lasts: no tolerationSeconds. */
const ISOLATION_TOLERATION = { key: NODE_TAINT_ISOLATED, operator: 'Exists', effect: 'NoExecute' };

function tolerates(pod: AnyPod): boolean {
  return (pod.spec?.tolerations ?? []).some((t) => t.key === NODE_TAINT_ISOLATED && t.operator === 'Exists' && (!t.effect || t.effect === 'NoExecute') && t.tolerationSeconds == null);
}

function ownerObjectRef(namespace: string, owner: OwnerInfo): ObjectRef {
  const apiVersion = owner.kind === 'Job' ? 'batch/v1' : owner.kind === 'Pod' ? 'v1' : 'apps/v1';
  return { apiVersion, kind: owner.kind, name: owner.name, namespace };
}
