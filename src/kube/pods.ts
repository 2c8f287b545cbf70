// What sickbay reads of a pod, shared by every concern that looks at pods: whether it
// is Ready, has ever been, is quarantined, waits on an image, and how to name it in an
// Event. Plain functions over plain objects.
import type { V1Node, V1ObjectMeta, V1OwnerReference, V1Pod, V1Toleration } from '@kubernetes/client-node';
import { LABEL_STATUS, NODE_TAINT_ISOLATED, STATUS_QUARANTINED } from '../core/names.js';
import { type ObjectRef, refOf } from './events.js';

declare const CACHED_POD: unique symbol;

/** What the cache keeps of a container's status: why it waits, and when sickbay's installer finished. */
export interface CachedContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  /** Only while the kubelet cannot pull it. */
  image: string;
  imageID: string;
  /** The kubelet's message only while it cannot pull an image (it names the image: an image volume's, for one). */
  state?: { waiting?: { reason?: string; message?: string } };
  lastState?: { terminated?: { exitCode: number; finishedAt?: Date } };
}

/**
 * A pod as sickbay's cache keeps it (cluster-cache.ts, podForCache): only what decisions
 * read. Its own type, so code that needs what the cache drops (probes, env, volumes,
 * other annotations) cannot compile against it and reads the pod from the API instead.
 * Its `apiVersion` is typed apart (the cache never sets it) so that a CachedPod is not a
 * V1Pod: a function that takes the whole pod cannot be handed a cached one.
 */
export interface CachedPod {
  apiVersion?: typeof CACHED_POD;
  metadata?: Pick<V1ObjectMeta, 'name' | 'namespace' | 'uid' | 'resourceVersion' | 'creationTimestamp' | 'deletionTimestamp' | 'labels' | 'annotations'> & {
    ownerReferences?: Array<Pick<V1OwnerReference, 'apiVersion' | 'kind' | 'name' | 'uid' | 'controller'>>;
  };
  spec?: {
    nodeName?: string;
    hostNetwork?: boolean;
    tolerations?: V1Toleration[];
    containers: Array<{ name: string; command?: string[]; ports?: Array<{ containerPort: number; hostPort?: number }> }>;
    initContainers?: Array<{ name: string }>;
    /** sickbay's image volume, only while an image cannot be pulled: the never-Ready rule names the shim's. */
    volumes?: Array<{ name: string; image?: { reference?: string } }>;
  };
  status?: {
    phase?: string;
    reason?: string;
    conditions?: Array<{ type: string; status: string; lastTransitionTime?: Date }>;
    podIP?: string;
    startTime?: Date;
    containerStatuses?: CachedContainerStatus[];
    initContainerStatuses?: CachedContainerStatus[];
  };
}

/** A pod from the cache or from the API: what the shared readers below take. */
export type AnyPod = CachedPod | V1Pod;

const time = (t: unknown): number | undefined => {
  if (t === undefined || t === null || t === '') return undefined;
  const ms = new Date(t as string).getTime();
  return Number.isNaN(ms) ? undefined : ms;
};

function condition(pod: AnyPod, type: string) {
  return pod.status?.conditions?.find((c) => c.type === type);
}

export function isPodReady(pod: AnyPod): boolean {
  return condition(pod, 'Ready')?.status === 'True';
}

export function isQuarantined(pod: AnyPod): boolean {
  return pod.metadata?.labels?.[LABEL_STATUS] === STATUS_QUARANTINED;
}

/**
 * Whether a pod has ever been Ready. Kubernetes keeps no such record, so it is read from
 * two sources: sickbay saw it Ready (every replica's informer tracks that), or the Ready
 * condition changed status after the pod was initialized. A pod that has never been
 * Ready has carried Ready=False since the kubelet first wrote its status, so its Ready
 * condition's lastTransitionTime is not later than its Initialized condition's. One
 * that was Ready and then failed transitioned twice, the last time after that. A pod
 * that became Ready and failed within the second it started is indistinguishable from
 * one that never was: unless a replica saw it Ready, it is treated as never Ready.
 */
export function wasEverReady(pod: AnyPod, seenReady: boolean): boolean {
  if (seenReady || isPodReady(pod)) return true;
  const ready = time(condition(pod, 'Ready')?.lastTransitionTime);
  const initialized = time(condition(pod, 'Initialized')?.lastTransitionTime) ?? time(pod.status?.startTime);
  if (ready === undefined || initialized === undefined) return false;
  // Condition times have one-second resolution; the two are written together for a pod
  // that never became Ready, so a later second means a transition in between.
  return ready - initialized >= 1000;
}

/**
 * When a NotReady pod began failing, on sickbay's clock: when its watch first saw this
 * NotReady spell (the cache starts a new one whenever the Ready condition's transition
 * time changes, so a spell the watch missed across a relist is not taken for an old one).
 * The condition's lastTransitionTime is written on the kubelet's clock (or
 * kube-controller-manager's): a node clock 10 s behind would take 10 s off the grace
 * period, one ahead would add to it. It is used only where sickbay has not seen the pod,
 * and never later than now.
 */
export function notReadySince(pod: AnyPod, now: number, firstSeenNotReady?: number): number | undefined {
  if (isPodReady(pod)) return undefined;
  if (firstSeenNotReady !== undefined) return firstSeenNotReady;
  const t = time(condition(pod, 'Ready')?.lastTransitionTime);
  return t === undefined ? undefined : Math.min(t, now);
}

/** The Ready condition's transition time as written, to tell one NotReady spell from the next. */
export function readyTransition(pod: AnyPod): string {
  return String(condition(pod, 'Ready')?.lastTransitionTime ?? '');
}

export function isNodeReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Taints that say a node is away or faulty: the node lifecycle controller's and sickbay's own. */
const NODE_AWAY_TAINTS: ReadonlySet<string> = new Set(['node.kubernetes.io/unreachable', 'node.kubernetes.io/not-ready', NODE_TAINT_ISOLATED]);

/**
 * Why a pod on this node cannot be judged by its own readiness now, or undefined. A
 * kubelet that stops reporting (down, rebooting, cut off) makes kube-controller-manager
 * mark every pod on its node Ready=False: that says nothing of the pods. Such pods are
 * left to the node's verdict (the taint manager's evictions, sickbay's node controller).
 */
export function nodeAway(nodeName: string | undefined, node: V1Node | undefined): string | undefined {
  if (!nodeName) return undefined;
  if (!node) return `its node ${nodeName} is not known to sickbay`;
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status !== 'True') {
    const state = ready?.status === 'False' ? 'NotReady' : 'not reporting (Ready Unknown)';
    return `its node ${nodeName} is ${state}${ready?.reason ? ` (${ready.reason})` : ''}`;
  }
  const taint = node.spec?.taints?.find((t) => NODE_AWAY_TAINTS.has(t.key));
  if (taint) return `its node ${nodeName} carries the taint ${taint.key}:${taint.effect}`;
  return undefined;
}

export interface OwnerInfo {
  kind: string;
  name: string;
}

/** `Kind/name` as sickbay.io/owner holds it; undefined for anything else. */
export function parseOwner(raw: string | undefined): OwnerInfo | undefined {
  const i = raw?.indexOf('/') ?? -1;
  return raw && i > 0 && i < raw.length - 1 ? { kind: raw.slice(0, i), name: raw.slice(i + 1) } : undefined;
}

/** Reasons the kubelet gives a container whose image it cannot get: the image's or its credentials' fault, never the node's. */
export const IMAGE_PULL_REASONS: ReadonlySet<string> = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'RegistryUnavailable', 'SignatureValidationFailed']);

export const podRef = (pod: AnyPod): ObjectRef => refOf('Pod', pod);
