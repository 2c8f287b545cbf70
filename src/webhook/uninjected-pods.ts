// Repair what slipped through (leader only). The mutating webhook fails open, so pods
// created while it was unreachable, or before their namespace opted in, run without the
// shim. They are reported: an Event on each (once), the gauge sickbay_uninjected_pods,
// and `sickbay status`. With SICKBAY_REPAIR_RESTART their Deployment is restarted (the
// same change as `kubectl rollout restart`) so its next pods are injected, under guards:
// only when the webhook has injected a pod created after the escaped one (it works
// again, so the restart cannot produce more escaped pods), at most once per Deployment
// per cooldown, and at a bounded rate cluster-wide.
// Injected pods with containers the supervisor could not wrap (no command, and no
// entrypoint annotation) are reported the same way: the gauge
// sickbay_unsupervised_containers, and one Event per workload and container saying the
// annotation that fixes it (the admission warning reaches nobody when a ReplicaSet
// creates the pod).
import { AppsV1Api } from '@kubernetes/client-node';
import { type AnyPod, type CachedPod, podRef } from '../kube/pods.js';
import { refOf } from '../kube/events.js';
import { callWithin, errorText, mergePatch } from '../kube/api.js';
import { keyOf } from '../kube/informer.js';
import { ANN_INJECTED, annEntrypoint, LABEL_INJECT, LABEL_INJECTION, SHIM_SUPERVISOR } from '../core/names.js';
import { TokenBucket } from '../util/rate-limiter.js';
import type { RepairConfig } from '../core/config.js';
import { ControllerBase, type ControllerDeps } from '../kube/controller-base.js';

const RESTART_COOLDOWN_MS = 10 * 60_000;
const RESTARTS_PER_MINUTE = 5;
// A namespace of 10,000 pods that opts in, or a webhook down during a large rollout,
// makes that many escaped pods at once: an Event each, all at once, would be a load on
// the API server of sickbay's own making. The gauge counts them all at once; the
// Events follow at this pace, and the log says it in one line per scan.
const EVENTS_PER_MINUTE = 30;
const SCAN_MS = 30_000;

export function escapedInjection(pod: AnyPod, ownNamespace: string): boolean {
  return (
    pod.metadata?.namespace !== ownNamespace &&
    pod.metadata?.annotations?.[ANN_INJECTED] === undefined &&
    pod.metadata?.labels?.[LABEL_INJECT] !== 'false' &&
    !pod.metadata?.deletionTimestamp &&
    pod.status?.phase !== 'Succeeded' &&
    pod.status?.phase !== 'Failed'
  );
}

/** The app containers of an injected pod that run without sickbay's supervisor. */
export function unsupervisedContainers(pod: AnyPod): string[] {
  if (pod.metadata?.annotations?.[ANN_INJECTED] === undefined || pod.metadata?.deletionTimestamp) return [];
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return [];
  return (pod.spec?.containers ?? []).filter((c) => c.command?.[0] !== SHIM_SUPERVISOR).map((c) => c.name);
}

/** What to tell a user about an unsupervised container, and how to fix it. */
export function unsupervisedAdvice(container: string): string {
  return (
    `container "${container}" sets no command, so its image's entrypoint is unknown to sickbay and it runs without the supervisor: ` +
    `a crash restarts the container and its scene is lost. Set its command, or annotate the pod template with ` +
    `${annEntrypoint(container)}: '["<entrypoint>", ...]' (the image's ENTRYPOINT and CMD)`
  );
}

export class UninjectedPodsController extends ControllerBase<RepairConfig> {
  private readonly apps: AppsV1Api;
  private readonly reported = new Set<string>();
  /** `<namespace>/<kind>/<name>/<container>` whose unsupervised Event is written. */
  private readonly unsupervisedReported = new Set<string>();
  private readonly restartedAt = new Map<string, number>();
  private readonly rate = new TokenBucket(RESTARTS_PER_MINUTE);
  private readonly eventRate = new TokenBucket(EVENTS_PER_MINUTE);
  /** The escaped pods of the last scan (logged once). */
  private known = new Set<string>();
  /** Escaped pods whose Event the rate limit has held back. */
  private owed = 0;
  /** The newest creation time of a pod the webhook injected: proof it works since. */
  private lastInjected = 0;

  private wake?: () => void;

  constructor(deps: ControllerDeps<RepairConfig>) {
    super(deps);
    this.apps = deps.kc.makeApiClient(AppsV1Api);
    // Seen as they come (an injected probe pod may be gone by the next scan); a new
    // escaped pod brings the next scan forward.
    // Wake the scan for a new escaped pod, for the proof the webhook works again (while
    // escaped pods wait for it), and when an escaped pod is gone.
    const seen = (pod: CachedPod) => {
      if (pod.metadata?.annotations?.[ANN_INJECTED] !== undefined) {
        const t = created(pod);
        if (t > this.lastInjected && this.reported.size > 0) this.wake?.();
        this.lastInjected = Math.max(this.lastInjected, t);
      } else if (this.cache.isOptedIn(pod.metadata?.namespace ?? '') && !this.reported.has(keyOf(pod))) this.wake?.();
    };
    this.cache.pods.on({ add: seen, update: seen, delete: (pod) => this.reported.has(keyOf(pod)) && this.wake?.() }, deps.term);
    // A namespace that opts in with pods already running: they are all escaped now.
    this.cache.namespaces.on({
      update: (ns, old) => ns.metadata?.labels?.[LABEL_INJECTION] !== old.metadata?.labels?.[LABEL_INJECTION] && this.wake?.(),
    }, deps.term);
  }

  async run(signal: AbortSignal): Promise<void> {
    // Started by the manager once the caches have synced.
    while (!signal.aborted) {
      await this.scan().catch((err) => this.log.warn('scan for escaped pods failed', { error: errorText(err) }));
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.wake = undefined;
          signal.removeEventListener('abort', done);
          resolve();
        };
        // Events still owed come as the rate allows, not a whole scan period later.
        const t = setTimeout(done, this.owed ? Math.min(SCAN_MS, Math.max(5_000, this.eventRate.waitMs())) : SCAN_MS);
        // Coalesce a burst of new pods into one scan a second later.
        this.wake = () => {
          this.wake = undefined;
          clearTimeout(t);
          setTimeout(done, 1_000);
        };
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  async scan(): Promise<string[]> {
    const escaped: CachedPod[] = [];
    let unsupervised = 0;
    const byWorkload = new Map<string, { pod: CachedPod; containers: string[] }>();
    // Injected pods are only checked for unsupervised containers (the newest one's
    // creation time is kept by the handler above, which sees every pod): a scan of 10,000
    // pods parsing each one's creation date cost 15 ms, once a second while escaped pods
    // kept changing.
    for (const pod of this.cache.pods.list()) {
      if (pod.metadata?.annotations?.[ANN_INJECTED] !== undefined) {
        const names = unsupervisedContainers(pod);
        if (names.length === 0 || !this.cache.isOptedIn(pod.metadata?.namespace ?? '')) continue;
        unsupervised += names.length;
        const owner = this.cache.ownerOf(pod);
        const key = `${pod.metadata?.namespace}/${owner.kind}/${owner.name}`;
        if (!byWorkload.has(key)) byWorkload.set(key, { pod, containers: names });
        continue;
      }
      if (!this.cache.isOptedIn(pod.metadata?.namespace ?? '')) continue;
      if (escapedInjection(pod, this.config.ownNamespace)) escaped.push(pod);
    }
    this.metrics.uninjectedPods.set(escaped.length);
    this.metrics.unsupervisedContainers.set(unsupervised);
    await this.reportUnsupervised(byWorkload);
    const keys = new Set(escaped.map(keyOf));
    for (const k of this.reported) if (!keys.has(k)) this.reported.delete(k);
    const fresh = escaped.filter((p) => !this.known.has(keyOf(p)));
    this.known = keys;
    if (fresh.length) this.log.warn(`${fresh.length} more pod(s) escaped injection`, { pods: fresh.slice(0, 5).map(keyOf), total: escaped.length });
    const unreported = escaped.filter((p) => !this.reported.has(keyOf(p)));
    this.owed = unreported.length;
    for (const pod of unreported) {
      if (!this.eventRate.tryTake()) break; // the rest get theirs in a later scan
      this.owed--;
      this.reported.add(keyOf(pod));
      await this.events.record(
        podRef(pod),
        'Warning',
        'NotInjected',
        `created without sickbay's supervisor and probe (the webhook was unreachable, or the namespace opted in later); ${this.config.restart ? 'its Deployment is restarted once the webhook works' : 'restart its workload to inject it'}`,
      );
    }
    if (this.config.restart) for (const pod of escaped) await this.maybeRestart(pod);
    return [...keys];
  }

  /** One Event per workload and container, on the workload, paced with the others. */
  private async reportUnsupervised(byWorkload: Map<string, { pod: CachedPod; containers: string[] }>) {
    for (const k of this.unsupervisedReported) if (!byWorkload.has(k.slice(0, k.lastIndexOf('/')))) this.unsupervisedReported.delete(k);
    for (const [workload, { pod, containers }] of byWorkload) {
      for (const container of containers) {
        const key = `${workload}/${container}`;
        if (this.unsupervisedReported.has(key)) continue;
        if (!this.eventRate.tryTake()) return; // the rest in a later scan
        this.unsupervisedReported.add(key);
        const owner = this.cache.ownerOf(pod);
        this.log.info('a container of an injected workload runs without the supervisor', { workload, container });
        await this.events.record(
          refOf(owner.kind, { name: owner.name, namespace: pod.metadata!.namespace! }),
          'Warning',
          'ContainerNotSupervised',
          unsupervisedAdvice(container),
        );
      }
    }
  }

  private async maybeRestart(pod: CachedPod) {
    const deployment = this.cache.deploymentOf(pod);
    if (!deployment?.metadata?.name) return;
    const key = keyOf(deployment);
    const now = Date.now();
    if (now - (this.restartedAt.get(key) ?? 0) < RESTART_COOLDOWN_MS) return;
    if (this.lastInjected <= created(pod)) return; // no sign the webhook works since this pod was made
    if (!this.rate.tryTake()) return;
    this.restartedAt.set(key, now);
    const ref = refOf('Deployment', deployment);
    if (this.config.dryRun) {
      this.metrics.repairRestarts.inc({ result: 'dry-run' });
      this.log.info('dry run: would restart a Deployment whose pods escaped injection', { deployment: key });
      await this.events.record(ref, 'Normal', 'WouldRestart', `dry run: would restart this Deployment so its pods are injected (pod ${pod.metadata?.name} runs without sickbay's shim)`);
      return;
    }
    const { name, namespace } = deployment.metadata;
    try {
      await callWithin(10_000, 'deployment restart', (o) => this.apps.patchNamespacedDeployment({ name, namespace: namespace!, body: { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date(now).toISOString() } } } } } }, o), mergePatch);
      this.metrics.repairRestarts.inc({ result: 'restarted' });
      this.log.warn('restarted a Deployment whose pods escaped injection', { deployment: key, pod: keyOf(pod) });
      await this.events.record(ref, 'Normal', 'RestartedForInjection', `pod ${pod.metadata?.name} runs without sickbay's shim; restarted so new pods are injected`);
    } catch (err) {
      this.restartedAt.delete(key);
      this.log.warn('could not restart a Deployment whose pods escaped injection', { deployment: key, error: errorText(err) });
    }
  }
}

function created(pod: AnyPod): number {
  const t = pod.metadata?.creationTimestamp;
  return t ? new Date(t).getTime() : 0;
}
