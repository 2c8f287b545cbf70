// The pod isolation controller: a failing pod in an opted-in namespace is taken out of
// its ReplicaSet and Services (so the workload replaces it and traffic stops) and kept,
// a few per workload; the rest are deleted. Level-triggered: every reconcile reads the
// pod as it is now, and the quarantine itself is one patch guarded by resourceVersion,
// so a restart or a failover at any point neither repeats nor loses an action. What it
// decides is pure (quarantine-policy.ts); how it writes is pod-actions.ts.
import type { EventReason } from '../core/event-reasons.js';
import type { QuarantineConfig } from '../core/config.js';
import type { V1ReplicaSet } from '@kubernetes/client-node';
import { ControllerBase, type ControllerDeps } from '../kube/controller-base.js';
import { randomUUID } from 'node:crypto';
import { type ObjectRef, refOf } from '../kube/events.js';
import { keyOf } from '../kube/informer.js';
import { errorText } from '../kube/api.js';
import { type ReconcileResult, WorkQueue } from '../kube/workqueue.js';
import type { Logger } from '../core/log.js';
import { ANN_ARCHIVE, ANN_EXPIRES_AT, ANN_ISOLATE, ANN_MAX_QUARANTINED, ANN_OWNER, ANN_RELEASE } from '../core/names.js';
import { TokenBucket } from '../util/rate-limiter.js';
import { admit, ALERT_REQUEST_TTL_MS, decide, type EarlierAction, parseMaxQuarantined, isAlertRequest, quarantineTrigger, type Trigger } from './quarantine-policy.js';
import { type AnyPod, type CachedPod, isPodReady, isQuarantined, nodeAway, type OwnerInfo, parseOwner, podRef, wasEverReady } from '../kube/pods.js';
import { annotate, type PostQuarantineStep } from '../kube/steps.js';
import type { SceneArchiver } from '../archive/archiver.js';
import { PodActions, tolerates } from './pod-actions.js';

/** What `sickbay.io/archive` holds. */
interface ArchiveRecord {
  status: 'pending' | 'ok' | 'failed' | 'deleted-without';
  /** A failing pod beyond its workload's quota, kept only for its archive (deleted as over-quota). */
  overQuota?: boolean;
  key?: string;
  url?: string;
  bytes?: number;
  error?: string;
  attempts?: number;
  at: string;
}
/** A failing archive is retried after 30 s, doubling up to 10 min. */
const archiveRetryMs = (attempts: number) => Math.min(30_000 * 2 ** (attempts - 1), 10 * 60_000);


export class PodIsolationController extends ControllerBase<QuarantineConfig> {
  private readonly queue: WorkQueue;
  private readonly rate: TokenBucket;
  /** When sickbay first saw each pod's request (`sickbay.io/isolate`), and the request it saw: a new one counts anew. */
  private readonly requestSeen = new Map<string, { value: string; at: number }>();
  /** Per workload, sickbay's quarantines and evictions of its pods (the back-off window's worth). */
  private readonly actions = new Map<string, Omit<EarlierAction, 'replaced'>[]>();
  /** Pods this process evicted whose deletion the watch has not shown yet (by uid). */
  private readonly evicted = new Set<string>();
  /** Pods whose post-quarantine steps have been started by this leader. */
  private readonly stepsStarted = new Set<string>();
  /** Pods with a quarantine or delete on its way to the API server, and their workload. */
  private readonly inFlight = new Map<string, { action: 'quarantine' | 'delete'; workload: string }>();
  private signal?: AbortSignal;
  /** Its writes: each one call under a precondition (pod-actions.ts). */
  private readonly podActions: PodActions;

  constructor(
    deps: ControllerDeps<QuarantineConfig>,
    private readonly steps: PostQuarantineStep[] = [],
    /** Set when an archive is configured: scenes go there before sickbay deletes them. */
    private readonly archiver?: SceneArchiver,
  ) {
    super(deps);
    this.podActions = new PodActions(this.kc, this.core, this.cache, this.config.ttlMs);
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
        this.stepsStarted.delete(keyOf(p));
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
    cache.replicaSets.on({ add: (rs) => this.checkReplacement(rs), update: (rs) => this.checkReplacement(rs) }, deps.term);
  }


  /**
   * A quarantine takes a pod out of its ReplicaSet so a replacement starts; when the
   * ReplicaSet cannot create it (a ResourceQuota the quarantined pod still counts against,
   * a LimitRange, an admission webhook), the workload is left short. sickbay keeps the
   * scene (deleting it to make room would lose the evidence) and says so on the workload,
   * with what would free the room.
   */
  private checkReplacement(rs: V1ReplicaSet) {
    const namespace = rs.metadata?.namespace ?? '';
    const key = keyOf(rs);
    const failure = rs.status?.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
    // Said once per ReplicaSet and failure message; forgotten once it can create pods again.
    if (!failure || !this.cache.isOptedIn(namespace)) return void this.events.notices.forget(`refused/${key}`);
    const deployment = rs.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'Deployment')?.name;
    const owner: OwnerInfo = deployment ? { kind: 'Deployment', name: deployment } : { kind: 'ReplicaSet', name: rs.metadata?.name ?? '' };
    const scenes = this.cache.quarantinedIn(namespace).filter((p) => p.metadata?.annotations?.[ANN_OWNER] === `${owner.kind}/${owner.name}` && !p.metadata?.deletionTimestamp);
    if (scenes.length === 0 || !this.events.notices.isNew(`refused/${key}`, failure.message ?? '')) return; // not after sickbay's action, or said
    const want = rs.spec?.replicas ?? 0;
    const short = Math.max(0, want - (rs.status?.replicas ?? 0));
    this.metrics.replacementsRefused.inc();
    const message = `${short} of ${want} pods missing: the ReplicaSet cannot create the replacement of quarantined ${scenes.map((p) => p.metadata!.name).join(', ')} (${failure.reason ?? 'FailedCreate'}: ${failure.message ?? ''}). The scene is kept; \`sickbay release ${namespace}/${scenes[0]!.metadata!.name}\` frees its share of the quota`;
    this.log.warn('a quarantined pod\'s replacement cannot be created; the workload is short', { workload: `${namespace}/${owner.kind}/${owner.name}`, short, reason: failure.message });
    void this.events.record(ownerObjectRef(namespace, owner), 'Warning', 'ReplacementRefused', message);
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

    const request = pod.metadata?.annotations?.[ANN_ISOLATE];
    if (request === undefined) this.requestSeen.delete(key);
    else if (this.requestSeen.get(key)?.value !== request) this.requestSeen.set(key, { value: request, at: now });
    const trigger = quarantineTrigger(pod, now, this.config.notReadyGraceMs, {
      seenReady: this.cache.hasBeenSeenReady(pod),
      firstSeenNotReady: this.cache.firstSeenNotReady(pod),
      requestSeenAt: this.requestSeen.get(key)?.at,
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

    const owner = this.cache.ownerOf(pod);
    // An alert alone never takes out a bare pod: nothing would replace it, and it would be
    // deleted at its TTL. (POST /alerts refuses to write such a request; this holds for one
    // written otherwise, or before that rule.)
    if (trigger.kind === 'alert' && owner.kind === 'Pod') {
      this.metrics.skips.inc({ reason: 'alert-bare-pod' });
      this.eventOnce(podRef(pod), 'Warning', 'QuarantineSkipped', `an alert asked to quarantine this bare pod (${trigger.reason}); nothing would replace it, so an alert alone never takes it out of service: a person may, with sickbay.io/isolate`);
      return;
    }
    // Events inform no decision, and the reconcile does not wait for them: a worker is
    // free for the next failing pod as soon as its own write is done.
    return this.act(pod, owner, trigger, now, log);
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
    const failing = inService.filter((p) => (!isPodReady(p) && wasEverReady(p, this.cache.hasBeenSeenReady(p))) || this.activeRequest(p, now)).length;
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
      if (decision.action === 'delete' && this.archiver) {
        // With an archive the scene of a pod beyond the quota is kept until it is written:
        // out of service as a quarantine is (its replacement starts at once, as after an
        // eviction), dumped, then archived and deleted when its short stay ends.
        const kept = await this.keepForArchive(pod, owner, trigger, decision.reason, now, log);
        acted = kept;
        return kept ? { requeueAfterMs: this.archiver.overQuotaKeepMs + 10 } : undefined;
      }
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
    const quarantined = await this.podActions.quarantine(pod, owner, trigger.reason, now, log);
    if (!quarantined) return false;
    this.metrics.quarantines.inc({ trigger: trigger.kind });
    this.metrics.timeToQuarantine.observe(Math.max(0, Date.now() - trigger.since) / 1000);
    void this.events.record(podRef(pod), 'Warning', 'Quarantined', `taken out of service and kept for inspection: ${trigger.reason}`);
    if (owner.kind !== 'Pod') {
      void this.events.record(ownerObjectRef(namespace, owner), 'Warning', 'PodQuarantined', `pod ${pod.metadata!.name} quarantined (${trigger.reason}); a replacement is starting`);
    }
    this.startSteps(quarantined);
    void this.podActions.tolerateIsolation(quarantined, log);
    return true;
  }

  private async reconcileQuarantined(pod: CachedPod, now: number, log: Logger): Promise<ReconcileResult> {
    const expires = Date.parse(pod.metadata?.annotations?.[ANN_EXPIRES_AT] ?? '');
    // A release (`sickbay release`) ends the quarantine as its TTL would: archived, then deleted.
    const released = pod.metadata?.annotations?.[ANN_RELEASE];
    if (released !== undefined || (!Number.isNaN(expires) && expires <= now)) {
      const archived = parseArchiveRecord(pod.metadata?.annotations?.[ANN_ARCHIVE]);
      // A pod beyond its quota kept only for its archive ends as that, unless released first.
      const overQuota = archived?.overQuota === true && released === undefined;
      const why = released !== undefined ? `released${released ? ` (${released})` : ''}` : overQuota ? 'beyond its workload\'s quota, kept only for its archive' : 'quarantine expired';
      if (this.config.dryRun) {
        log.info(`dry run: would delete the quarantined pod: ${why}`);
        this.eventOnce(podRef(pod), 'Normal', 'WouldDelete', `dry run: would delete this quarantined pod: ${why}`);
        return;
      }
      let note = '';
      if (this.archiver) {
        const requestedAt = Date.parse(released?.split(' ')[0] ?? '');
        const dueAt = released !== undefined ? (Number.isNaN(requestedAt) ? now : Math.min(requestedAt, now)) : expires;
        const held = await this.archiveBeforeDeletion(pod, archived, dueAt, now, why, log);
        if (typeof held === 'number') return { requeueAfterMs: held };
        note = held;
      }
      await this.deletePod(pod, released !== undefined ? 'released' : overQuota ? 'over-quota' : 'expired', `${why}${note}`, log);
      return;
    }
    // Deregistration and diagnostics act on the pod: not in dry run.
    if (this.config.dryRun) return void log.info('dry run: would deregister and diagnose the quarantined pod');
    this.startSteps(pod);
    // Quarantined before this toleration was added (an older sickbay, a failed write): add it now.
    if (!tolerates(pod)) {
      const full = await this.core.readNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace! }).catch(() => undefined);
      if (full && isQuarantined(full)) await this.podActions.tolerateIsolation(full, log);
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
  /**
   * Writes the scene's bundle before a quarantined pod is deleted. Returns how long to hold
   * the deletion back (ms) while the archive fails within SICKBAY_ARCHIVE_MAX_DELAY of when
   * the deletion was due, or what the deletion's Event should add (where the bundle went,
   * or that it went without one).
   */
  private async archiveBeforeDeletion(pod: CachedPod, previous: ArchiveRecord | undefined, dueAt: number, now: number, why: string, log: Logger): Promise<number | string> {
    if (previous?.status === 'ok') return `; its scene is archived at ${previous.url}`;
    // The failure's own annotation brings the pod back here at once: keep to the back-off.
    if (previous?.status === 'failed' && previous.attempts) {
      const nextAt = Date.parse(previous.at) + archiveRetryMs(previous.attempts);
      if (now < nextAt && now - dueAt < this.archiver!.maxDelayMs) return Math.min(nextAt, dueAt + this.archiver!.maxDelayMs) - now;
    }
    const owner = parseOwner(pod.metadata?.annotations?.[ANN_OWNER]) ?? { kind: 'Pod', name: pod.metadata!.name! };
    // A pod kept only for its archive stays one through retries (its deletion is over-quota).
    const record = ({ status, ...r }: Omit<ArchiveRecord, 'at' | 'overQuota'>) =>
      annotate(this.core, pod, ANN_ARCHIVE, { status, ...(previous?.overQuota ? { overQuota: true } : {}), ...r, at: new Date().toISOString() } satisfies ArchiveRecord).catch((err) => log.warn('could not record the archive annotation', { error: errorText(err) }));
    try {
      const a = await this.archiver!.archive({ namespace: pod.metadata!.namespace!, name: pod.metadata!.name!, owner }, new Date(now));
      this.metrics.archives.inc({ result: 'ok' });
      this.metrics.archiveBytes.inc(a.bytes);
      log.info('scene archived', { key: a.key, bytes: a.bytes, files: a.files, missing: a.missing });
      await record({ status: 'ok', key: a.key, url: a.url, bytes: a.bytes });
      void this.events.record(podRef(pod), 'Normal', 'SceneArchived', `the scene's bundle (${a.files} files, ${a.bytes} bytes compressed) is at ${a.url}; ${why}: deleting the pod`);
      return `; its scene is archived at ${a.url}`;
    } catch (err) {
      const attempts = (previous?.attempts ?? 0) + 1;
      const error = errorText(err);
      const maxDelayMs = this.archiver!.maxDelayMs;
      if (now - dueAt >= maxDelayMs) {
        this.metrics.archives.inc({ result: 'deleted-without' });
        log.error('deleting a quarantined pod without its archive: the hold-back bound has passed', { attempts, error });
        await record({ status: 'deleted-without', error, attempts });
        void this.events.record(podRef(pod), 'Warning', 'DeletedWithoutArchive', `${why}; its scene could not be archived in ${attempts} attempts over ${Math.round(maxDelayMs / 60_000)} min (SICKBAY_ARCHIVE_MAX_DELAY), the last error: ${error}; deleting the pod and its scene`);
        return `; deleted WITHOUT an archive after ${attempts} attempts (${error})`;
      }
      this.metrics.archives.inc({ result: 'failed' });
      const retryMs = Math.min(archiveRetryMs(attempts), Math.max(dueAt + maxDelayMs - now, 1000));
      log.warn('could not archive the scene; the pod is kept', { attempts, error, retryInMs: retryMs });
      await record({ status: 'failed', error, attempts });
      this.eventOnce(podRef(pod), 'Warning', 'ArchiveFailed', `${why}, but its scene could not be archived (attempt ${attempts}: ${error}); the pod is kept and sickbay tries again in ${Math.round(retryMs / 1000)} s, at most until ${new Date(dueAt + maxDelayMs).toISOString()} (SICKBAY_ARCHIVE_MAX_DELAY)`);
      return retryMs;
    }
  }

  /**
   * A failing pod beyond its workload's quota, with an archive: taken out of service as a
   * quarantine (so its replacement starts at once), marked for the archive, and kept for
   * SICKBAY_ARCHIVE_OVER_QUOTA_KEEP (its dumps are taken meanwhile); then reconcileQuarantined
   * archives and deletes it. True once it is out of service.
   */
  private async keepForArchive(pod: CachedPod, owner: OwnerInfo, trigger: Extract<Trigger, { since: number }>, overQuota: string, now: number, log: Logger): Promise<boolean> {
    const record: ArchiveRecord = { status: 'pending', overQuota: true, at: new Date(now).toISOString() };
    const kept = await this.podActions.quarantine(pod, owner, `${trigger.reason}; beyond the quota (${overQuota}): kept only until its scene is archived`, now, log, { untilMs: now + this.archiver!.overQuotaKeepMs, archive: record });
    if (!kept) return false;
    this.metrics.timeToQuarantine.observe(Math.max(0, Date.now() - trigger.since) / 1000);
    const message = `${trigger.reason}; ${overQuota}: taken out of service (a replacement is starting) and kept only until its scene is archived, then deleted`;
    void this.events.record(podRef(pod), 'Warning', 'KeptForArchive', message);
    if (owner.kind !== 'Pod') void this.events.record(ownerObjectRef(pod.metadata!.namespace!, owner), 'Warning', 'KeptForArchive', `pod ${pod.metadata!.name}: ${message}`);
    this.startSteps(kept);
    void this.podActions.tolerateIsolation(kept, log);
    return true;
  }

  /**
   * A failing pod beyond the quota leaves through the Eviction API, so the workload's
   * PodDisruptionBudget holds. Refused (429): the pod stays, with an Event.
   */
  private async evictPod(pod: CachedPod, message: string, log: Logger): Promise<'evicted' | 'refused' | 'gone'> {
    const r = await this.podActions.evict(pod);
    if (r.result === 'refused') {
      this.metrics.skips.inc({ reason: 'disruption-budget' });
      log.info('eviction refused by a PodDisruptionBudget; the pod stays', { pod: keyOf(pod) });
      this.eventOnce(podRef(pod), 'Warning', 'EvictionRefused', `not evicted: its PodDisruptionBudget allows no disruption now (${r.why}); sickbay tries again later`);
      return 'refused';
    }
    if (r.result === 'gone') return 'gone';
    // The Eviction API answers with a Status, not the pod: until the watch shows it
    // terminating, no decision may take it for a failing pod again.
    this.evicted.add(pod.metadata!.uid!);
    this.metrics.podDeletions.inc({ reason: 'over-quota' });
    log.info('evicted pod', { reason: 'over-quota', message });
    void this.events.record(podRef(pod), 'Warning', 'FailingPodDeleted', message);
    return 'evicted';
  }

  private async deletePod(pod: CachedPod, reason: 'expired' | 'released' | 'over-quota', message: string, log: Logger) {
    if (!(await this.podActions.delete(pod))) return; // already gone, or a different pod by that name now
    this.metrics.podDeletions.inc({ reason });
    log.info('deleted pod', { reason, message });
    void this.events.record(podRef(pod), 'Warning', reason === 'released' ? 'QuarantineReleased' : reason === 'over-quota' ? 'FailingPodDeleted' : 'QuarantineExpired', message);
    const owner = parseOwner(pod.metadata?.annotations?.[ANN_OWNER]);
    if (reason === 'over-quota' && owner && owner.kind !== 'Pod') void this.events.record(ownerObjectRef(pod.metadata!.namespace!, owner), 'Normal', 'FailingPodDeleted', `pod ${pod.metadata!.name}: ${message}`);
  }

  private startSteps(pod: AnyPod) {
    const key = keyOf(pod);
    if (this.steps.length === 0 || this.stepsStarted.has(key) || !this.signal) return;
    this.stepsStarted.add(key);
    for (const step of this.steps) {
      step.run(pod, this.signal).catch((err) => this.log.error('post-quarantine step failed; the quarantine stands', { pod: key, step: step.name, error: errorText(err) }));
    }
  }

  /**
   * Whether the pod carries a request that still counts: a person's always; an alert's
   * until ALERT_REQUEST_TTL_MS after sickbay saw it (an alert whose resolution never came
   * must not count the pod as failing forever: the systemic guard would hold its workload).
   */
  private activeRequest(p: CachedPod, now: number): boolean {
    const request = p.metadata?.annotations?.[ANN_ISOLATE];
    if (request === undefined) return false;
    if (!isAlertRequest(request)) return true;
    const seen = this.requestSeen.get(keyOf(p));
    return !seen || seen.value !== request || now - seen.at < ALERT_REQUEST_TTL_MS;
  }

  /** At most one Event a minute per object and reason. */
  private eventOnce(ref: ObjectRef, type: 'Normal' | 'Warning', reason: EventReason, message: string) {
    void this.events.once(`${ref.kind}/${ref.namespace}/${ref.name}/${reason}`, '', ref, type, reason, message, 60_000);
  }
}


const ownerObjectRef = (namespace: string, owner: OwnerInfo): ObjectRef => refOf(owner.kind, { name: owner.name, namespace });

function parseArchiveRecord(raw: string | undefined): ArchiveRecord | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as ArchiveRecord;
    return v && typeof v === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}
