// Pods that never become Ready are often the node's fault (a broken runtime, a bad
// mount, a full disk). A pod in an opted-in namespace that has never been Ready and is
// older than SICKBAY_NEVER_READY_AFTER is deleted (not quarantined: there is no app
// state worth keeping), and its node is recorded in its Deployment's
// `sickbay.io/avoid-nodes`, so the webhook keeps the replacement off that node.
// Records expire after SICKBAY_AVOID_NODES_TTL; a record that would leave no node able
// to take the Deployment's pods is cleared.
import type { NeverReadyConfig } from '../core/config.js';
import { ControllerBase, type ControllerDeps } from '../kube/controller-base.js';
import { randomUUID } from 'node:crypto';
import { AppsV1Api, type V1Deployment, type V1Node, type V1Pod } from '@kubernetes/client-node';
import type { ObjectRef } from '../kube/events.js';
import { keyOf } from '../kube/informer.js';
import { codeOf, errorText, mergePatch } from '../kube/api.js';
import { type ReconcileResult, WorkQueue } from '../kube/workqueue.js';
import type { Logger } from '../core/log.js';
import { ANN_AVOID_NODES, SHIM_INIT_CONTAINER } from '../core/names.js';
import { TokenBucket } from '../util/rate-limiter.js';
import { withDeadline } from '../util/wait.js';
import { type AvoidRecord, feasibleNodes, liveEntries, parseAvoidRecord } from './avoid-nodes.js';
import { IMAGE_PULL_REASONS, isPodReady, isQuarantined, podRef, wasEverReady } from '../kube/pods.js';


/** The first container (init containers first) waiting for an image it cannot pull. */
export function imagePullFailure(pod: V1Pod): { container: string; reason: string; image: string; shim: boolean } | undefined {
  for (const st of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const reason = st.state?.waiting?.reason;
    if (reason && IMAGE_PULL_REASONS.has(reason)) return { container: st.name, reason, image: st.image, shim: st.name === SHIM_INIT_CONTAINER };
  }
  return undefined;
}

/**
 * Since when a pod has been failing to become Ready: its creation, or, if sickbay's own
 * init container finished later (its image was slow to come), that moment. Time spent
 * waiting for sickbay's image is never counted against the pod's node.
 */
export function neverReadyClockStart(pod: V1Pod): number {
  const created = new Date(pod.metadata?.creationTimestamp ?? 0).getTime();
  const shim = pod.status?.initContainerStatuses?.find((s) => s.name === SHIM_INIT_CONTAINER);
  const finished = shim?.state?.terminated?.finishedAt ?? shim?.lastState?.terminated?.finishedAt;
  return Math.max(created, finished ? new Date(finished).getTime() : 0);
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
  private readonly warned = new Map<string, string>();

  constructor(deps: ControllerDeps<NeverReadyConfig>) {
    super(deps);
    const { kc, config, log, metrics, cache } = deps;
    this.apps = kc.makeApiClient(AppsV1Api);
    this.rate = new TokenBucket(config.ratePerMinute);
    this.queue = new WorkQueue((key) => this.reconcile(key), { name: 'never-ready', concurrency: 4, log, metrics, canAct: deps.leading });
    const enqueuePod = (p: V1Pod) => {
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
    if (owner.kind !== 'Deployment') return; // the record lives on a Deployment
    const namespace = pod.metadata!.namespace!;
    const deployment = this.cache.deployments.get(`${namespace}/${owner.name}`);
    if (!deployment) return;
    const node = pod.spec.nodeName;

    // Most of a Deployment never starting is the app's fault (a bad image, a bad config),
    // not the nodes': deleting and blacklisting would only churn.
    const siblings = this.cache.inServicePodsOf(namespace, owner);
    const stuck = siblings.filter((p) => !isPodReady(p) && !wasEverReady(p, this.cache.hasBeenSeenReady(p)) && Date.now() - neverReadyClockStart(p) >= this.config.afterMs).length;
    if (siblings.length > 1 && stuck / siblings.length > this.config.systemicFailureRatio) {
      this.metrics.skips.inc({ reason: 'systemic' });
      await this.warnOnce(`${namespace}/${owner.name}`, 'systemic', deploymentRef(deployment), 'SystemicFailure', `${stuck} of ${siblings.length} pods of Deployment ${owner.name} never became Ready: the app, not the nodes; sickbay deletes nothing`);
      return { requeueAfterMs: 30_000 };
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
    this.metrics.avoidRecords.inc({ action: 'recorded' });
    try {
      await withDeadline(this.core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace, body: { preconditions: { uid: pod.metadata!.uid } } }), 10_000, 'pod delete');
    } catch (err) {
      if (codeOf(err) === 404 || codeOf(err) === 409) return;
      throw new Error(`delete failed: ${errorText(err)}`);
    }
    this.metrics.podDeletions.inc({ reason: 'never-ready' });
    const ageS = Math.round(age / 1000);
    log.info('deleted a pod that never became Ready; its Deployment now avoids the node', { pod: key, node, ageSeconds: ageS });
    await this.events.record(podRef(pod), 'Warning', 'NeverReadyDeleted', `never became Ready in ${ageS}s on node ${node}; deleted so a replacement starts elsewhere`);
    await this.events.record({ apiVersion: 'apps/v1', kind: 'Deployment', name: owner.name, namespace }, 'Warning', 'NodeAvoided', `new pods avoid node ${node}: pod ${pod.metadata!.name} never became Ready there`);
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
        { apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata!.name!, namespace: d.metadata!.namespace },
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
      const patched = await withDeadline(
        this.apps.patchNamespacedDeployment(
          { name: d.metadata!.name!, namespace: d.metadata!.namespace!, body: { metadata: { resourceVersion: d.metadata!.resourceVersion, annotations: { [ANN_AVOID_NODES]: value } } } },
          mergePatch,
        ),
        10_000,
        'deployment patch',
      );
      this.cache.deployments.writeThrough(patched);
    } catch (err) {
      throw new Error(`updating ${ANN_AVOID_NODES} failed (retrying): ${errorText(err)}`);
    }
  }

  /** One Warning Event per object, reason and cause (`what`). */
  private async warnOnce(key: string, what: string, ref: ObjectRef, reason: string, message: string) {
    if (this.warned.get(`${key}/${reason}`) === what) return;
    this.warned.set(`${key}/${reason}`, what);
    this.log.warn(message, { object: key });
    await this.events.record(ref, 'Warning', reason, message);
  }
}

function deploymentRef(d: V1Deployment): ObjectRef {
  return { apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata!.name!, namespace: d.metadata!.namespace, uid: d.metadata?.uid };
}
