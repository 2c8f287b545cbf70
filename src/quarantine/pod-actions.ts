// The pod isolation controller's writes (the node side has node-actions.ts): the
// quarantine patch, the node isolation toleration, the liveness hold, the eviction and the
// deletion. Each is one call guarded by a precondition (the pod's resourceVersion or uid),
// so a retry after a timeout is safe; each says what came of it, and the controller, which
// decided it, counts it and tells people (metrics, Events).
import type { CoreV1Api, KubeConfig, V1LabelSelector, V1Pod } from '@kubernetes/client-node';
import { ANN_ARCHIVE, ANN_EXPIRES_AT, ANN_ORIGINAL_LABELS, ANN_OWNER, ANN_QUARANTINED_AT, ANN_REASON, LABEL_STATUS, NODE_TAINT_ISOLATED, SHIM_PROBE, STATUS_QUARANTINED } from '../core/names.js';
import type { Logger } from '../core/log.js';
import { HOLD_COMMAND } from '../core/shim-commands.js';
import { callWithin, codeOf, errorText, jsonPatch, mergePatch } from '../kube/api.js';
import type { ClusterCache } from '../kube/cluster-cache.js';
import { execInPod } from '../kube/exec.js';
import type { AnyPod, CachedPod, OwnerInfo } from '../kube/pods.js';
import { labelsToStrip } from './quarantine-policy.js';

const API_DEADLINE_MS = 10_000;
const HOLD_TIMEOUT_MS = 5_000;

/** Tolerated for as long as the quarantine lasts: no tolerationSeconds. */
const ISOLATION_TOLERATION = { key: NODE_TAINT_ISOLATED, operator: 'Exists', effect: 'NoExecute' };

export function tolerates(pod: AnyPod): boolean {
  return (pod.spec?.tolerations ?? []).some((t) => t.key === NODE_TAINT_ISOLATED && t.operator === 'Exists' && (!t.effect || t.effect === 'NoExecute') && t.tolerationSeconds == null);
}

export type EvictionResult = { result: 'evicted' } | { result: 'gone' } | { result: 'refused'; why: string };

export class PodActions {
  constructor(
    private readonly kc: KubeConfig,
    private readonly core: CoreV1Api,
    private readonly cache: ClusterCache,
    /** How long a quarantine lasts (SICKBAY_QUARANTINE_TTL); 0: until a release. */
    private readonly ttlMs: number,
  ) {}

  /**
   * Takes the pod out of service: strips the labels its ReplicaSet's and Services'
   * selectors match (kept in an annotation for a release), marks it quarantined, all in one
   * patch guarded by the cached resourceVersion. Undefined if the pod is gone; a conflict
   * throws (the newer version is queued and decides again).
   */
  async quarantine(pod: CachedPod, owner: OwnerInfo, reason: string, now: number, log: Logger, keep?: { untilMs: number; archive: unknown }): Promise<V1Pod | undefined> {
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
          [ANN_EXPIRES_AT]: keep ? new Date(keep.untilMs).toISOString() : this.ttlMs > 0 ? new Date(now + this.ttlMs).toISOString() : 'never',
          [ANN_ORIGINAL_LABELS]: JSON.stringify(original),
          ...(keep ? { [ANN_ARCHIVE]: JSON.stringify(keep.archive) } : {}),
        },
      },
    };
    try {
      const patched = await callWithin(API_DEADLINE_MS, 'quarantine patch', (o) => this.core.patchNamespacedPod({ name: pod.metadata!.name!, namespace, body }, o), mergePatch);
      // The hold reads the liveness probes off the pod as the API returned it: the cached
      // pod keeps no probes, and the hold never ran while it read them there.
      void this.hold(patched, log);
      this.cache.pods.writeThrough(patched);
      log.info('quarantined', { reason, owner: `${owner.kind}/${owner.name}`, removedLabels: strip });
      return patched;
    } catch (err) {
      if (codeOf(err) === 404) return undefined; // gone: done
      throw new Error(`quarantine patch failed: ${errorText(err)}`, { cause: err });
    }
  }

  /**
   * A quarantined pod is a kept scene: when its node is isolated (often for the very fault
   * that made its pods fail), sickbay's own NoExecute taint must not evict it. It gets a
   * toleration of `sickbay.io/isolated` (a running pod may gain tolerations), from the pod as
   * the API returned it (the cached pod keeps no tolerations but this one). Best effort,
   * re-tried by the next reconcile of the quarantined pod.
   */
  async tolerateIsolation(pod: V1Pod, log: Logger): Promise<void> {
    const tolerations = pod.spec?.tolerations ?? [];
    if (tolerates(pod)) return;
    const ops = [
      { op: 'test', path: '/metadata/uid', value: pod.metadata!.uid },
      tolerations.length ? { op: 'add', path: '/spec/tolerations/-', value: ISOLATION_TOLERATION } : { op: 'add', path: '/spec/tolerations', value: [ISOLATION_TOLERATION] },
    ];
    try {
      const patched = await callWithin(API_DEADLINE_MS, 'toleration patch', (o) => this.core.patchNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: ops }, o), jsonPatch);
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
    return execInPod(this.kc, target, HOLD_COMMAND, HOLD_TIMEOUT_MS).then(
      (r) => {
        if (r.exitCode !== 0) log.warn('could not hold the liveness probe; the kubelet may restart the container before the quarantine label reaches it', { container, error: r.error ?? r.stderr.trim() });
      },
      (err) => void log.warn('could not hold the liveness probe', { container, error: errorText(err) }),
    );
  }

  /**
   * Through the Eviction API, so the workload's PodDisruptionBudget holds: refused (429)
   * while it allows no disruption; gone if the pod is, or another pod has its name now.
   */
  async evict(pod: CachedPod): Promise<EvictionResult> {
    const name = pod.metadata!.name!;
    const namespace = pod.metadata!.namespace!;
    try {
      await callWithin(API_DEADLINE_MS, 'pod eviction', (o) => this.core.createNamespacedPodEviction({ name, namespace, body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace }, deleteOptions: { preconditions: { uid: pod.metadata!.uid } } } }, o));
      return { result: 'evicted' };
    } catch (err) {
      if (codeOf(err) === 404 || codeOf(err) === 409) return { result: 'gone' };
      if (codeOf(err) === 429) return { result: 'refused', why: errorText(err) };
      throw new Error(`eviction failed: ${errorText(err)}`, { cause: err });
    }
  }

  /** Deletes this pod (by uid); false if it was gone already, or another pod has its name now. */
  async delete(pod: CachedPod): Promise<boolean> {
    try {
      const deleted = await callWithin(API_DEADLINE_MS, 'pod delete', (o) => this.core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { preconditions: { uid: pod.metadata!.uid } } }, o));
      if (deleted.metadata?.deletionTimestamp) this.cache.pods.writeThrough(deleted);
      return true;
    } catch (err) {
      if (codeOf(err) === 404 || codeOf(err) === 409) return false;
      throw new Error(`delete failed: ${errorText(err)}`, { cause: err });
    }
  }
}
