// Pods that never become Ready: the node's fault (a broken runtime, a bad mount, a CNI
// that cannot give the sandbox a network) or the app's (a bad config, a crash at start).
// A pod in an opted-in namespace never Ready for SICKBAY_NEVER_READY_AFTER is judged by
// its evidence. Containers never created on the node, or other workloads never Ready on
// the same node: the node's fault, the pod is deleted and its node recorded in its
// Deployment's `sickbay.io/avoid-nodes`, so the webhook keeps the replacement off it.
// Containers that started: the app's fault, the pod is kept as the scene (a quarantine
// request) and no node is blamed. Either way under the systemic rule and a back-off.
// Records expire after SICKBAY_AVOID_NODES_TTL; a record that would leave no node able
// to take the Deployment's pods is cleared.
import type { EventReason } from '../core/event-reasons.js';
import type { NeverReadyConfig } from '../core/config.js';
import { ControllerBase, type ControllerDeps } from '../kube/controller-base.js';
import { randomUUID } from 'node:crypto';
import { AppsV1Api, type V1ContainerState, type V1Deployment, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { type ObjectRef, refOf } from '../kube/events.js';
import { keyOf } from '../kube/informer.js';
import { callWithin, codeOf, errorText, mergePatch } from '../kube/api.js';
import { type ReconcileResult, WorkQueue } from '../kube/workqueue.js';
import type { Logger } from '../core/log.js';
import { ANN_AVOID_NODES, ANN_ISOLATE, SHIM_IMAGE_VOLUME, SHIM_INIT_CONTAINER, SHIM_SUPERVISOR } from '../core/names.js';
import { TokenBucket } from '../util/rate-limiter.js';
import { type AvoidRecord, feasibleNodes, liveEntries, parseAvoidRecord } from './avoid-nodes.js';
import { type AnyPod, type CachedPod, IMAGE_PULL_REASONS, isPodReady, isQuarantined, nodeAway, type OwnerInfo, podRef, wasEverReady } from '../kube/pods.js';


/**
 * The first container (init containers first) waiting for an image it cannot pull, and
 * which image: the kubelet's message names it (an image volume's failure is reported on
 * the containers that mount it, whose own image is not the one missing). sickbay's own
 * is told apart: its init container, or its image volume's image.
 */
export function imagePullFailure(pod: AnyPod): { container: string; reason: string; image: string; shim: boolean } | undefined {
  const shimVolume = pod.spec?.volumes?.find((v) => v.name === SHIM_IMAGE_VOLUME)?.image?.reference;
  for (const st of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const reason = st.state?.waiting?.reason;
    if (!reason || !IMAGE_PULL_REASONS.has(reason)) continue;
    const named = /image "([^"]+)"/.exec(st.state?.waiting?.message ?? '')?.[1];
    const image = named ?? st.image;
    return { container: st.name, reason, image, shim: st.name === SHIM_INIT_CONTAINER || (shimVolume !== undefined && image === shimVolume) };
  }
  return undefined;
}

/**
 * Since when a pod has been failing to become Ready: its creation, or, if sickbay's own
 * init container finished later (its image was slow to come), that moment. Time spent
 * waiting for sickbay's image is never counted against the pod's node.
 */
export function neverReadyClockStart(pod: AnyPod): number {
  const created = new Date(pod.metadata?.creationTimestamp ?? 0).getTime();
  const shim = pod.status?.initContainerStatuses?.find((s) => s.name === SHIM_INIT_CONTAINER);
  // From the API the installer's end is in its state; the cache keeps it in lastState only.
  const state = shim?.state as V1ContainerState | undefined;
  const finished = state?.terminated?.finishedAt ?? shim?.lastState?.terminated?.finishedAt;
  return Math.max(created, finished ? new Date(finished).getTime() : 0);
}

/** Why an app container has not started, when the node is the one that could not start it: its sandbox, mounts or network. */
const NODE_START_REASONS: ReadonlySet<string> = new Set(['ContainerCreating', 'PodInitializing']);

export type NeverReadyCause =
  /** The node did its part (the app's containers started): the app's fault (a bad config, a crash at start). */
  | { kind: 'app'; why: string }
  /** The app's containers were never started on this node, for reasons that are the node's. */
  | { kind: 'node'; why: string };

/**
 * Whose fault a pod that never became Ready is, from the pod alone. A container that
 * started (running now, or restarted, or in CrashLoopBackOff) shows the node created the
 * sandbox, mounted the volumes and ran the image: what fails after that is the app's,
 * and a new node would not help. Only containers that were never created (still
 * ContainerCreating or PodInitializing long after the pod was placed) point at the node;
 * a missing ConfigMap or Secret (CreateContainerConfigError) or a bad command does not.
 */
export function neverReadyCause(pod: AnyPod): NeverReadyCause {
  const app = pod.status?.containerStatuses ?? [];
  const started = app.filter((c) => !c.state?.waiting?.reason || c.state.waiting.reason === 'CrashLoopBackOff' || (c.restartCount ?? 0) > 0);
  if (started.length > 0) return { kind: 'app', why: `container ${started[0]!.name} started on the node but the pod never became Ready` };
  const waiting = app.map((c) => c.state?.waiting?.reason ?? '');
  const init = (pod.status?.initContainerStatuses ?? []).find((c) => c.state?.waiting?.reason && !NODE_START_REASONS.has(c.state.waiting.reason));
  if (init) return { kind: 'app', why: `init container ${init.name} is waiting: ${init.state!.waiting!.reason}` };
  const other = waiting.find((r) => r && !NODE_START_REASONS.has(r));
  if (other) return { kind: 'app', why: `its containers wait with ${other}, which is not the node's doing` };
  return { kind: 'node', why: `its containers were never started on the node (${waiting.find(Boolean) ?? 'no container status'})` };
}

/** What of a node decides whether a pod can be placed on it. */
function schedulingView(n: V1Node): string {
  const ready = n.status?.conditions?.find((c) => c.type === 'Ready')?.status;
  return JSON.stringify([ready, n.spec?.unschedulable ?? false, n.spec?.taints ?? [], n.metadata?.labels ?? {}]);
}

export class NeverReadyController extends ControllerBase<NeverReadyConfig> {
  private readonly apps: AppsV1Api;
  private readonly queue: WorkQueue;
  private readonly rate: TokenBucket;
  /** Per workload, when sickbay deleted one of its never-Ready pods (the back-off window's worth). */
  private readonly actions = new Map<string, number[]>();

  constructor(deps: ControllerDeps<NeverReadyConfig>) {
    super(deps);
    const { kc, config, log, metrics, cache } = deps;
    this.apps = kc.makeApiClient(AppsV1Api);
    this.rate = new TokenBucket(config.ratePerMinute);
    this.queue = new WorkQueue((key) => this.reconcile(key), { name: 'never-ready', concurrency: 4, log, metrics, canAct: deps.leading });
    const enqueuePod = (p: CachedPod) => {
      if (this.cache.isOptedIn(p.metadata?.namespace ?? '')) this.queue.add(`pod:${keyOf(p)}`);
    };
    cache.pods.on({ add: enqueuePod, update: enqueuePod }, deps.term);
    const enqueueDeployment = (d: V1Deployment) => {
      if (d.metadata?.annotations?.[ANN_AVOID_NODES] !== undefined) this.queue.add(`deployment:${keyOf(d)}`);
    };
    cache.deployments.on({ add: enqueueDeployment, update: enqueueDeployment }, deps.term);
    // A node turning unready, tainted, cordoned or relabelled may make a record infeasible;
    // heartbeats (most node updates) change none of that.
    cache.nodes.on({
      update: (n, old) => {
        if (schedulingView(n) !== schedulingView(old)) this.enqueueAllRecords();
      },
      delete: () => this.enqueueAllRecords(),
    }, deps.term);
  }

  private enqueueAllRecords() {
    for (const d of this.cache.deployments.list()) if (d.metadata?.annotations?.[ANN_AVOID_NODES] !== undefined) this.queue.add(`deployment:${keyOf(d)}`);
  }

  async run(signal: AbortSignal) {
    // Started by the manager once the caches have synced.
    for (const p of this.cache.pods.list()) if (this.cache.isOptedIn(p.metadata?.namespace ?? '')) this.queue.add(`pod:${keyOf(p)}`);
    this.enqueueAllRecords();
    await this.queue.run(signal);
  }

  private reconcile(key: string): Promise<ReconcileResult> {
    const log = this.log.child({ key, reconcileId: randomUUID().slice(0, 8) });
    if (key.startsWith('pod:')) return this.reconcilePod(key.slice(4), log);
    return this.reconcileDeployment(key.slice('deployment:'.length), log);
  }

  private async reconcilePod(key: string, log: Logger): Promise<ReconcileResult> {
    const pod = this.cache.pods.get(key);
    if (!pod || pod.metadata?.deletionTimestamp || isQuarantined(pod) || !pod.spec?.nodeName) return;
    if (!this.cache.isOptedIn(pod.metadata!.namespace!) || isPodReady(pod) || wasEverReady(pod, this.cache.hasBeenSeenReady(pod))) return;
    const owner = this.cache.ownerOf(pod);
    // A pod on a node that is away is left to the node's verdict.
    if (nodeAway(pod.spec.nodeName, this.cache.nodes.get(pod.spec.nodeName))) return { requeueAfterMs: 5_000 };
    // An image that cannot be pulled (a private registry without its pull secret, a
    // mistyped tag) is not the node's doing: no deletion, no avoid-list entry.
    const pull = imagePullFailure(pod);
    if (pull) {
      this.metrics.skips.inc({ reason: pull.shim ? 'shim-image-pull' : 'image-pull' });
      const message = pull.shim
        ? `injected pods cannot pull sickbay's shim image ${pull.image} (${pull.reason}); give sickbay the pull secret (SICKBAY_SHIM_PULL_SECRETS, chart value shim.imagePullSecrets) or a reachable image (SICKBAY_SHIM_IMAGE). Node ${pod.spec.nodeName} is not blamed`
        : `container ${pull.container} cannot pull ${pull.image} (${pull.reason}): the image or its pull secret, not node ${pod.spec.nodeName}; sickbay leaves the pod and its node alone`;
      await this.warnOnce(key, `${pull.container}/${pull.reason}`, podRef(pod), pull.shim ? 'ShimImageUnavailable' : 'ImagePullNotNode', message);
      if (pull.shim && owner.kind === 'Deployment') {
        const d = this.cache.deployments.get(`${pod.metadata!.namespace}/${owner.name}`);
        if (d) await this.warnOnce(`${pod.metadata!.namespace}/${owner.name}`, 'shim-image', deploymentRef(d), 'ShimImageUnavailable', message);
      }
      return;
    }
    const age = Date.now() - neverReadyClockStart(pod);
    const left = this.config.afterMs - age;
    if (left > 0) return { requeueAfterMs: left + 10 };
    const namespace = pod.metadata!.namespace!;
    const node = pod.spec.nodeName;

    // Most of a Deployment never starting is the app's fault (a bad image, a bad config),
    // not the nodes': deleting and blacklisting would only churn.
    const siblings = this.cache.inServicePodsOf(namespace, owner);
    const stuck = siblings.filter((p) => this.stuck(p)).length;
    if (siblings.length > 1 && stuck / siblings.length > this.config.systemicFailureRatio) {
      this.metrics.skips.inc({ reason: 'systemic' });
      const ref = owner.kind === 'Deployment' ? refOf('Deployment', { name: owner.name, namespace }) : podRef(pod);
      await this.warnOnce(`${namespace}/${owner.name}`, 'systemic', ref, 'SystemicFailure', `${stuck} of ${siblings.length} pods of ${owner.kind} ${owner.name} never became Ready: the app, not the nodes; sickbay deletes nothing`);
      return { requeueAfterMs: 30_000 };
    }

    // Whose fault: the pod's own evidence, then its neighbours'. Other workloads' pods
    // never Ready on the same node point at the node even where the containers started.
    const cause = neverReadyCause(pod);
    let nodeEvidence = cause.kind === 'node' ? cause.why : undefined;
    if (!nodeEvidence) {
      const others = new Set<string>();
      for (const p of this.cache.pods.list()) {
        if (p.spec?.nodeName !== node || isQuarantined(p) || p.metadata?.deletionTimestamp || !this.cache.isOptedIn(p.metadata?.namespace ?? '')) continue;
        const o = this.cache.ownerOf(p);
        if ((o.kind !== owner.kind || o.name !== owner.name || p.metadata?.namespace !== namespace) && this.stuck(p) && !imagePullFailure(p)) others.add(`${p.metadata?.namespace}/${o.kind}/${o.name}`);
      }
      if (others.size > 0) nodeEvidence = `pods of ${others.size} other workload(s) never became Ready on it either (${[...others].slice(0, 3).join(', ')})`;
    }
    if (!nodeEvidence) return this.appFault(pod, owner, cause.why, age, log);

    if (owner.kind !== 'Deployment') return; // the record lives on a Deployment
    const deployment = this.cache.deployments.get(`${namespace}/${owner.name}`);
    if (!deployment) return;
    // The same per-workload back-off as quarantines: replacements failing on node after
    // node are no longer the nodes' doing.
    const workload = `${namespace}/${owner.name}`;
    const now = Date.now();
    const recent = (this.actions.get(workload) ?? []).filter((at) => now - at < this.config.backoffWindowMs);
    this.actions.set(workload, recent);
    if (recent.length >= this.config.backoffAfter) {
      this.metrics.skips.inc({ reason: 'backoff' });
      await this.warnOnce(workload, 'backoff', deploymentRef(deployment), 'WorkloadBackOff', `sickbay deleted ${recent.length} never-Ready pods of Deployment ${owner.name} within ${Math.round(this.config.backoffWindowMs / 60_000)} min and its replacements do not start either: it stops acting on this workload until the window has passed`);
      return { requeueAfterMs: Math.max(recent[0]! + this.config.backoffWindowMs - now, 1000) };
    }
    if (!this.config.dryRun && !this.rate.tryTake()) return { requeueAfterMs: Math.max(this.rate.waitMs(), 100) };
    if (this.config.dryRun) {
      this.metrics.skips.inc({ reason: 'dry-run' });
      log.info('dry run: would delete a pod that never became Ready and avoid its node', { pod: key, node });
      await this.warnOnce(key, node, podRef(pod), 'WouldDelete', `dry run: would delete this pod (never Ready in ${Math.round(age / 1000)}s on node ${node}) and have Deployment ${owner.name} avoid the node`);
      return;
    }

    // Record first, so the replacement the deletion causes already avoids the node.
    await this.updateRecord(deployment, (record) => ({ ...record, [node]: new Date().toISOString() }));
    recent.push(now);
    this.metrics.avoidRecords.inc({ action: 'recorded' });
    try {
      await callWithin(10_000, 'pod delete', (o) => this.core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace, body: { preconditions: { uid: pod.metadata!.uid } } }, o));
    } catch (err) {
      if (codeOf(err) === 404 || codeOf(err) === 409) return;
      throw new Error(`delete failed: ${errorText(err)}`, { cause: err });
    }
    this.metrics.podDeletions.inc({ reason: 'never-ready' });
    const ageS = Math.round(age / 1000);
    log.info('deleted a pod that never became Ready; its Deployment now avoids the node', { pod: key, node, ageSeconds: ageS, evidence: nodeEvidence });
    await this.events.record(podRef(pod), 'Warning', 'NeverReadyDeleted', `never became Ready in ${ageS}s on node ${node}, and the node is to blame: ${nodeEvidence}; deleted so a replacement starts elsewhere`);
    await this.events.record(refOf('Deployment', { name: owner.name, namespace }), 'Warning', 'NodeAvoided', `new pods avoid node ${node}: pod ${pod.metadata!.name} never became Ready there`);
  }

  /** Never Ready, for longer than the never-Ready time. */
  private stuck(p: CachedPod): boolean {
    return !isPodReady(p) && !wasEverReady(p, this.cache.hasBeenSeenReady(p)) && Date.now() - neverReadyClockStart(p) >= this.config.afterMs;
  }

  /**
   * A pod whose app started and never became Ready: the app's fault. Deleting it would
   * lose the scene (the supervisor holds a crashed app in its container for exactly this)
   * and blame an innocent node. A supervised pod is handed to the pod isolation
   * controller as a quarantine request, with its guards (the quota, the systemic rule,
   * the back-off, the rate): quarantined once, kept. Any other pod is left alone.
   */
  private async appFault(pod: CachedPod, owner: OwnerInfo, why: string, age: number, log: Logger): Promise<ReconcileResult> {
    const key = keyOf(pod);
    if (pod.metadata?.annotations?.[ANN_ISOLATE] !== undefined) return;
    const node = pod.spec!.nodeName!;
    const ageS = Math.round(age / 1000);
    const supervised = (pod.spec?.containers ?? []).some((c) => c.command?.[0] === SHIM_SUPERVISOR);
    this.metrics.skips.inc({ reason: 'never-ready-app' });
    if (!supervised) {
      await this.warnOnce(key, 'app', podRef(pod), 'NeverReadyAppFault', `never became Ready in ${ageS}s: ${why}. That is the app's fault, not node ${node}'s: sickbay neither deletes it nor avoids the node`);
      return;
    }
    if (this.config.dryRun) {
      log.info('dry run: would request the quarantine of a never-Ready pod whose app started', { pod: key, why });
      await this.warnOnce(key, 'app', podRef(pod), 'WouldQuarantine', `dry run: never became Ready in ${ageS}s (${why}); would keep it as the scene, not delete it, and not blame node ${node}`);
      return;
    }
    const reason = `never Ready in ${ageS}s: ${why}; the app's fault, not node ${node}'s`;
    try {
      const patched = await callWithin(10_000, 'pod patch', (o) => this.core.patchNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { metadata: { resourceVersion: pod.metadata!.resourceVersion, annotations: { [ANN_ISOLATE]: reason } } } }, o), mergePatch);
      this.cache.pods.writeThrough(patched);
    } catch (err) {
      if (codeOf(err) === 404) return;
      throw new Error(`requesting the quarantine failed: ${errorText(err)}`, { cause: err });
    }
    log.info('never Ready, its app started: requested its quarantine (the scene is kept, the node is not blamed)', { pod: key, owner: `${owner.kind}/${owner.name}`, why });
    await this.events.record(podRef(pod), 'Warning', 'NeverReadyAppFault', `never became Ready in ${ageS}s: ${why}. The app's fault, not node ${node}'s: kept as the scene (quarantine requested), not deleted, the node not avoided`);
    return;
  }

  private async reconcileDeployment(key: string, log: Logger): Promise<ReconcileResult> {
    const d = this.cache.deployments.get(key);
    if (!d) return;
    const raw = d.metadata?.annotations?.[ANN_AVOID_NODES];
    if (raw === undefined) return;
    const { record, error } = parseAvoidRecord(raw);
    if (error) {
      await this.warnOnce(key, raw, deploymentRef(d), 'BadAvoidNodes', error);
      return;
    }
    const now = Date.now();
    const live = liveEntries(record, now, this.config.avoidNodesTtlMs);
    const template: V1Pod = { metadata: d.spec?.template.metadata, spec: d.spec?.template.spec };
    const feasible = feasibleNodes(template, [...this.cache.nodes.list()]);
    const remaining = feasible.filter((n) => !live.includes(n));
    if (live.length > 0 && remaining.length === 0) {
      if (this.config.dryRun) return void log.info('dry run: would clear an avoid-list that leaves no feasible node', { deployment: key });
      await this.updateRecord(d, () => undefined);
      this.metrics.avoidRecords.inc({ action: 'cleared' });
      log.info('cleared the avoid-list: it left no node that could take the pods', { deployment: key, avoided: live });
      await this.events.record(
        refOf('Deployment', { name: d.metadata!.name!, namespace: d.metadata!.namespace }),
        'Warning',
        'AvoidListCleared',
        `avoiding ${live.join(', ')} would leave no node that can take the pods; the record is cleared and scheduling uses all nodes`,
      );
      return;
    }
    if (live.length < Object.keys(record).length) {
      if (this.config.dryRun) return;
      await this.updateRecord(d, (r) => Object.fromEntries(Object.entries(r).filter(([n]) => live.includes(n))));
      this.metrics.avoidRecords.inc({ action: 'expired' });
      return;
    }
    const next = Math.min(...live.map((n) => Date.parse(record[n]!) + this.config.avoidNodesTtlMs));
    return Number.isFinite(next) ? { requeueAfterMs: Math.max(next - now, 100) } : undefined;
  }

  /** Read-modify-write of the record, preconditioned on the Deployment's resourceVersion. */
  private async updateRecord(d: V1Deployment, change: (r: AvoidRecord) => AvoidRecord | undefined) {
    const current = parseAvoidRecord(d.metadata?.annotations?.[ANN_AVOID_NODES]).record;
    const next = change(current);
    const value = next && Object.keys(next).length > 0 ? JSON.stringify(next) : null;
    try {
      const patched = await callWithin(10_000, 'deployment patch', (o) => this.apps.patchNamespacedDeployment({ name: d.metadata!.name!, namespace: d.metadata!.namespace!, body: { metadata: { resourceVersion: d.metadata!.resourceVersion, annotations: { [ANN_AVOID_NODES]: value } } } }, o), mergePatch);
      this.cache.deployments.writeThrough(patched);
    } catch (err) {
      throw new Error(`updating ${ANN_AVOID_NODES} failed (retrying): ${errorText(err)}`, { cause: err });
    }
  }

  /** One Warning Event per object, reason and cause (`what`), logged with it. */
  private async warnOnce(key: string, what: string, ref: ObjectRef, reason: EventReason, message: string) {
    if (!this.events.notices.isNew(`${key}/${reason}`, what)) return;
    this.log.warn(message, { object: key });
    await this.events.record(ref, 'Warning', reason, message);
  }
}

const deploymentRef = (d: V1Deployment) => refOf('Deployment', d);
