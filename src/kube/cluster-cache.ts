// The informer caches sickbay reads from. They run on every replica (the webhook reads
// them on the admission path, and a replica that becomes leader starts warm); the
// controllers only run on the leader.
import type { KubeConfig, V1ContainerStatus, V1Deployment, V1Namespace, V1Node, V1Pod, V1ReplicaSet, V1Service } from '@kubernetes/client-node';
import { Informer } from './informer.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { LABEL_INJECTION, NODE_TAINT_ISOLATED, PREFIX, SHIM_IMAGE_VOLUME, SHIM_INIT_CONTAINER, SHIM_SUPERVISOR, SYSTEM_NAMESPACES } from '../core/names.js';
import { type AnyPod, type CachedPod, IMAGE_PULL_REASONS, isNodeReady, isPodReady, isQuarantined, type OwnerInfo, readyTransition } from './pods.js';

/**
 * What sickbay keeps of a pod: only what its decisions read. Of metadata: identity,
 * times, labels (the quarantine strips and restores them), sickbay's own annotations and
 * the controlling owner reference. Of spec and status: node, container names, phase, the
 * Ready and Initialized conditions, the pod IP, start and restart facts. Containers'
 * commands, env, probes, volumes and images, other annotations (a service mesh's status
 * annotation alone can be a kilobyte), other owner references, IPs and conditions are
 * dropped: at 10,000 pods the cache is most of the process's memory (bench/README.md).
 * Of a command, only whether sickbay's supervisor starts it is kept (one shared array);
 * of a hostNetwork pod, that it is one and the ports its containers declare; of
 * tolerations, only sickbay's own;
 * of a container's state, only why it waits (and its image when it cannot pull it), and
 * when sickbay's installer finished. Writes never start from a cached pod's spec
 * (quarantine and release patch metadata only).
 */
const SUPERVISED: string[] = Object.freeze([SHIM_SUPERVISOR]) as unknown as string[];

const pulling = (c: V1ContainerStatus) => IMAGE_PULL_REASONS.has(c.state?.waiting?.reason ?? '');
/** The start of a pull failure's message: enough to name the image. */
const PULL_MESSAGE_BYTES = 512;
/**
 * A waiting container's reason (ContainerCreating, ImagePullBackOff...), nothing else of
 * its state; while it cannot pull an image, the kubelet's message too, which names the
 * image (an image volume's failure is reported on the containers that mount it).
 */
const waitingFor = (c: V1ContainerStatus): { state?: { waiting: { reason: string; message?: string } } } => {
  const w = c.state?.waiting;
  if (!w?.reason) return {};
  return { state: { waiting: { reason: w.reason, ...(pulling(c) && w.message ? { message: w.message.slice(0, PULL_MESSAGE_BYTES) } : {}) } } };
};

/** The conditions the quarantine and never-Ready rules read. */
const KEPT_CONDITIONS = new Set(['Ready', 'Initialized']);

function sickbayAnnotations(annotations: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!annotations) return undefined;
  let out: Record<string, string> | undefined;
  for (const k in annotations) if (k.startsWith(`${PREFIX}/`)) (out ??= {})[k] = annotations[k]!;
  return out;
}

export function podForCache(pod: V1Pod): CachedPod {
  const { metadata: m, spec, status } = pod;
  const owner = m?.ownerReferences?.find((r) => r.controller) ?? m?.ownerReferences?.[0];
  const slim: CachedPod = {
    metadata: m && {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
      deletionTimestamp: m.deletionTimestamp,
      labels: m.labels,
      annotations: sickbayAnnotations(m.annotations),
      ownerReferences: owner && [{ apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: owner.uid, controller: owner.controller }],
    },
  };
  if (spec) {
    slim.spec = {
      nodeName: spec.nodeName,
      // Only whether it tolerates sickbay's own node taint (a quarantined pod must).
      ...(spec.tolerations?.some((t) => t.key === NODE_TAINT_ISOLATED) ? { tolerations: spec.tolerations.filter((t) => t.key === NODE_TAINT_ISOLATED) } : {}),
      // A hostNetwork pod's address is its node's: the registry step (re-run from this cache
      // by a new leader, and by node isolation) tells its own registrations by the ports it
      // declares. Kept for those pods only.
      ...(spec.hostNetwork ? { hostNetwork: true } : {}),
      containers: (spec.containers ?? []).map((c) => ({
        name: c.name,
        ...(c.command?.[0] === SHIM_SUPERVISOR ? { command: SUPERVISED } : {}),
        ...(spec.hostNetwork && c.ports?.length ? { ports: c.ports.map((p) => ({ containerPort: p.containerPort, ...(p.hostPort ? { hostPort: p.hostPort } : {}) })) } : {}),
      })),
      ...(spec.initContainers ? { initContainers: spec.initContainers.map((c) => ({ name: c.name })) } : {}),
    };
    // Which image is sickbay's, while one cannot be pulled (rare: kept only then).
    const shimVolume = spec.volumes?.find((v) => v.name === SHIM_IMAGE_VOLUME && v.image);
    if (shimVolume && (status?.containerStatuses?.some(pulling) || status?.initContainerStatuses?.some(pulling))) {
      slim.spec.volumes = [{ name: SHIM_IMAGE_VOLUME, image: { reference: shimVolume.image!.reference } }];
    }
  }
  if (status) {
    slim.status = {
      phase: status.phase,
      reason: status.reason,
      conditions: status.conditions?.filter((c) => KEPT_CONDITIONS.has(c.type)).map((c) => ({ type: c.type, status: c.status, lastTransitionTime: c.lastTransitionTime })),
      podIP: status.podIP,
      startTime: status.startTime,
      containerStatuses: status.containerStatuses?.map((c) => ({ name: c.name, ready: c.ready, restartCount: c.restartCount, image: pulling(c) ? c.image : '', imageID: '', ...waitingFor(c) })),
      // The never-Ready rule reads image pull failures, and when sickbay's installer finished.
      ...(status.initContainerStatuses
        ? {
            initContainerStatuses: status.initContainerStatuses.map((c) => {
              const finishedAt = c.name === SHIM_INIT_CONTAINER ? (c.state?.terminated?.finishedAt ?? c.lastState?.terminated?.finishedAt) : undefined;
              return { name: c.name, ready: c.ready, restartCount: c.restartCount, image: pulling(c) ? c.image : '', imageID: '', ...waitingFor(c), ...(finishedAt ? { lastState: { terminated: { exitCode: 0, finishedAt } } } : {}) };
            }),
          }
        : {}),
    };
  }
  return slim;
}

/** A condition's message as kept: a kilobyte at most (a hostile or chatty controller cannot grow the cache with it). */
const MESSAGE_BYTES = 1024;

/**
 * What sickbay keeps of a ReplicaSet: whose it is and what it selects (a quarantine strips
 * the labels its selector matches), how many pods it wants and has, and why it cannot
 * create them. Its pod template, the bulk of it (tens or hundreds of kilobytes; ten of them
 * per Deployment by default), is dropped.
 */
export function replicaSetForCache(rs: V1ReplicaSet): V1ReplicaSet {
  const m = rs.metadata;
  const owner = m?.ownerReferences?.find((r) => r.controller);
  const failure = rs.status?.conditions?.find((c) => c.type === 'ReplicaFailure');
  return {
    metadata: m && {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      ownerReferences: owner && [{ apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: owner.uid, controller: owner.controller }],
    },
    spec: rs.spec && { replicas: rs.spec.replicas, selector: rs.spec.selector },
    status: rs.status && {
      replicas: rs.status.replicas,
      readyReplicas: rs.status.readyReplicas,
      conditions: failure && [{ type: failure.type, status: failure.status, reason: failure.reason, message: failure.message?.slice(0, MESSAGE_BYTES) }],
    },
  };
}

/**
 * What sickbay keeps of a Deployment: identity, sickbay's own annotations (avoid-nodes,
 * max-quarantined), its selector and replicas, and of its pod template only where the pods
 * may run (node selector, node affinity, tolerations), which the avoid-list checks. The
 * rest of the template (containers, env, volumes, other annotations) is dropped: a
 * Deployment of a megabyte costs the cache a few hundred bytes.
 */
export function deploymentForCache(d: V1Deployment): V1Deployment {
  const m = d.metadata;
  const ps = d.spec?.template?.spec;
  return {
    metadata: m && { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, annotations: sickbayAnnotations(m.annotations) },
    spec: d.spec && {
      replicas: d.spec.replicas,
      selector: d.spec.selector,
      template: {
        spec: ps && {
          containers: [],
          nodeSelector: ps.nodeSelector,
          affinity: ps.affinity?.nodeAffinity ? { nodeAffinity: ps.affinity.nodeAffinity } : undefined,
          tolerations: ps.tolerations,
        },
      },
    },
  };
}

/** What sickbay keeps of a Service: identity and its selector. */
export function serviceForCache(svc: V1Service): V1Service {
  const m = svc.metadata;
  return { metadata: m && { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion }, spec: svc.spec && { selector: svc.spec.selector } };
}

/** What sickbay keeps of a Namespace: identity, labels (opt-ins) and sickbay's own annotations (the flight recorder). */
export function namespaceForCache(ns: V1Namespace): V1Namespace {
  const m = ns.metadata;
  return { metadata: m && { name: m.name, uid: m.uid, resourceVersion: m.resourceVersion, labels: m.labels, annotations: sickbayAnnotations(m.annotations) } };
}

/** A Node without the list of images it holds (tens of kilobytes on a busy node; nothing reads it). */
export function nodeForCache(node: V1Node): V1Node {
  if (!node.status?.images) return node;
  const { images: _, ...status } = node.status;
  return { ...node, status };
}

const BY_NAMESPACE = 'namespace';
const BY_CONTROLLER = 'controller';
const QUARANTINED_IN = 'quarantined';
const BY_DEPLOYMENT = 'deployment';

/** `<namespace>/<kind>/<name>` of the pod's controller (as ownerOf picks it), or of the pod itself. */
function controllerKey(pod: CachedPod): string {
  const ref = pod.metadata?.ownerReferences?.find((r) => r.controller) ?? pod.metadata?.ownerReferences?.[0];
  return ref ? `${pod.metadata?.namespace}/${ref.kind}/${ref.name}` : `${pod.metadata?.namespace}/Pod/${pod.metadata?.name}`;
}

export class ClusterCache {
  readonly namespaces: Informer<V1Namespace>;
  readonly pods: Informer<CachedPod, V1Pod>;
  readonly replicaSets: Informer<V1ReplicaSet>;
  readonly deployments: Informer<V1Deployment>;
  readonly services: Informer<V1Service>;
  readonly nodes: Informer<V1Node>;
  /** Pod UIDs this replica has seen Ready: part of how "has ever been Ready" is known. */
  private readonly seenReady = new Set<string>();
  /** Per NotReady pod, when this replica first saw its current NotReady spell, and that spell's transition time. */
  private readonly firstNotReady = new Map<string, { at: number; transition: string }>();
  /** When this replica saw each node turn Ready after it was not. */
  private readonly nodeBack = new Map<string, number>();

  /** The system namespaces and sickbay's own: never acted in, even if labelled. */
  private readonly offLimits: ReadonlySet<string>;

  constructor(kc: KubeConfig, o: { resyncMs: number; ownNamespace?: string; log: Logger; metrics?: Metrics }) {
    this.offLimits = new Set<string>([...SYSTEM_NAMESPACES, ...(o.ownNamespace ? [o.ownNamespace] : [])]);
    const common = { resyncMs: o.resyncMs, log: o.log, metrics: o.metrics };
    this.namespaces = new Informer(kc, { ...common, resource: 'namespaces', path: '/api/v1/namespaces', transform: namespaceForCache });
    this.pods = new Informer<CachedPod, V1Pod>(kc, { ...common, resource: 'pods', path: '/api/v1/pods', transform: podForCache });
    this.replicaSets = new Informer(kc, { ...common, resource: 'replicasets', path: '/apis/apps/v1/replicasets', transform: replicaSetForCache });
    this.deployments = new Informer(kc, { ...common, resource: 'deployments', path: '/apis/apps/v1/deployments', transform: deploymentForCache });
    this.services = new Informer(kc, { ...common, resource: 'services', path: '/api/v1/services', transform: serviceForCache });
    this.nodes = new Informer(kc, { ...common, resource: 'nodes', path: '/api/v1/nodes', transform: nodeForCache });
    this.pods.on({
      add: (p) => this.track(p),
      update: (p) => this.track(p),
      delete: (p) => {
        const uid = p.metadata?.uid ?? '';
        this.seenReady.delete(uid);
        this.firstNotReady.delete(uid);
      },
    });
    this.nodes.on({
      update: (n, old) => {
        if (isNodeReady(n) && !isNodeReady(old)) this.nodeBack.set(n.metadata?.name ?? '', Date.now());
      },
      delete: (n) => this.nodeBack.delete(n.metadata?.name ?? ''),
    });
    // Decisions look at one namespace's quarantined pods and Services, or one workload's pods: with
    // indexes that is a lookup, where a scan of 10,000 cached pods for each of 50 failing
    // pods blocked the event loop for 0.8 s (bench/README.md).
    this.pods.addIndex(BY_NAMESPACE, (p) => p.metadata?.namespace);
    this.pods.addIndex(BY_CONTROLLER, (p) => controllerKey(p));
    this.pods.addIndex(QUARANTINED_IN, (p) => (isQuarantined(p) ? p.metadata?.namespace : undefined));
    this.services.addIndex(BY_NAMESPACE, (svc) => svc.metadata?.namespace);
    this.replicaSets.addIndex(BY_DEPLOYMENT, (rs) => {
      const dep = rs.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'Deployment');
      return dep ? `${rs.metadata?.namespace}/Deployment/${dep.name}` : undefined;
    });
  }

  private track(p: CachedPod) {
    const uid = p.metadata?.uid ?? '';
    if (isPodReady(p)) {
      this.seenReady.add(uid);
      this.firstNotReady.delete(uid);
    } else {
      const transition = readyTransition(p);
      if (this.firstNotReady.get(uid)?.transition !== transition) this.firstNotReady.set(uid, { at: Date.now(), transition });
    }
  }

  all() {
    return [this.namespaces, this.pods, this.replicaSets, this.deployments, this.services, this.nodes];
  }

  run(signal: AbortSignal) {
    return Promise.all(this.all().map((i) => i.run(signal)));
  }

  notSynced(): string | undefined {
    const waiting = this.all().filter((i) => !i.hasSynced());
    return waiting.length ? 'informer caches not synced yet' : undefined;
  }

  /** Resolves once every informer has synced, or when `signal` aborts (one listener on it). */
  waitForSync(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const onAbort = () => resolve();
      signal.addEventListener('abort', onAbort, { once: true });
      void Promise.all(this.all().map((i) => i.waitForSync())).then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** Fresh lists of everything: what a new leader does before it acts. */
  relistAll(signal: AbortSignal) {
    return Promise.all(this.all().map((i) => i.relist(signal)));
  }

  hasBeenSeenReady(pod: AnyPod) {
    return this.seenReady.has(pod.metadata?.uid ?? '');
  }

  firstSeenNotReady(pod: AnyPod) {
    return this.firstNotReady.get(pod.metadata?.uid ?? '')?.at;
  }

  /** When this replica saw the node turn Ready again after it was not (undefined: not seen). */
  nodeBackAt(name: string | undefined): number | undefined {
    return name === undefined ? undefined : this.nodeBack.get(name);
  }

  isOptedIn(namespace: string): boolean {
    if (this.offLimits.has(namespace)) return false;
    return this.namespaces.get(namespace)?.metadata?.labels?.[LABEL_INJECTION] === 'enabled';
  }

  podsIn(namespace: string): CachedPod[] {
    return this.pods.byIndex(BY_NAMESPACE, namespace);
  }

  quarantinedIn(namespace: string): CachedPod[] {
    return this.pods.byIndex(QUARANTINED_IN, namespace);
  }

  /**
   * The workload a pod belongs to: its Deployment through its ReplicaSet, else its
   * controller, else itself. `namespace` for a pod being created, which may not carry one yet.
   */
  ownerOf(pod: AnyPod, namespace = pod.metadata?.namespace ?? ''): OwnerInfo {
    const ref = pod.metadata?.ownerReferences?.find((r) => r.controller) ?? pod.metadata?.ownerReferences?.[0];
    if (!ref) return { kind: 'Pod', name: pod.metadata?.name ?? '' };
    if (ref.kind === 'ReplicaSet') {
      const rs = this.replicaSets.get(`${namespace}/${ref.name}`);
      const dep = rs?.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'Deployment');
      if (dep) return { kind: 'Deployment', name: dep.name };
    }
    return { kind: ref.kind, name: ref.name };
  }

  /** The Deployment a pod belongs to, from the caches (the admission path makes no API call). */
  deploymentOf(pod: AnyPod, namespace = pod.metadata?.namespace ?? ''): V1Deployment | undefined {
    const owner = this.ownerOf(pod, namespace);
    return owner.kind === 'Deployment' ? this.deployments.get(`${namespace}/${owner.name}`) : undefined;
  }

  /** A workload's pods still in service: not quarantined, not being deleted. */
  inServicePodsOf(namespace: string, owner: OwnerInfo): CachedPod[] {
    const candidates =
      owner.kind === 'Deployment'
        ? this.replicaSets.byIndex(BY_DEPLOYMENT, `${namespace}/Deployment/${owner.name}`).flatMap((rs) => this.pods.byIndex(BY_CONTROLLER, `${namespace}/ReplicaSet/${rs.metadata?.name}`))
        : this.pods.byIndex(BY_CONTROLLER, `${namespace}/${owner.kind}/${owner.name}`);
    return candidates.filter((p) => {
      if (isQuarantined(p) || p.metadata?.deletionTimestamp) return false;
      const o = this.ownerOf(p, namespace);
      return o.kind === owner.kind && o.name === owner.name;
    });
  }

  replicaSetOf(pod: AnyPod): V1ReplicaSet | undefined {
    const ref = pod.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'ReplicaSet');
    return ref ? this.replicaSets.get(`${pod.metadata?.namespace}/${ref.name}`) : undefined;
  }

  servicesIn(namespace: string): V1Service[] {
    return this.services.byIndex(BY_NAMESPACE, namespace);
  }
}
