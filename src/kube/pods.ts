// What sickbay reads of a pod, shared by every concern that looks at pods: whether it
// is Ready, has ever been, is quarantined, waits on an image, and how to name it in an
// Event. Plain functions over plain objects.
import type { V1Pod } from '@kubernetes/client-node';
import { LABEL_STATUS, STATUS_QUARANTINED } from '../core/names.js';
import type { ObjectRef } from './events.js';

const time = (t: unknown): number | undefined => {
  if (t === undefined || t === null || t === '') return undefined;
  const ms = new Date(t as string).getTime();
  return Number.isNaN(ms) ? undefined : ms;
};

function condition(pod: V1Pod, type: string) {
  return pod.status?.conditions?.find((c) => c.type === type);
}

export function isPodReady(pod: V1Pod): boolean {
  return condition(pod, 'Ready')?.status === 'True';
}

export function isQuarantined(pod: V1Pod): boolean {
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
export function wasEverReady(pod: V1Pod, seenReady: boolean): boolean {
  if (seenReady || isPodReady(pod)) return true;
  const ready = time(condition(pod, 'Ready')?.lastTransitionTime);
  const initialized = time(condition(pod, 'Initialized')?.lastTransitionTime) ?? time(pod.status?.startTime);
  if (ready === undefined || initialized === undefined) return false;
  // Condition times have one-second resolution; the two are written together for a pod
  // that never became Ready, so a later second means a transition in between.
  return ready - initialized >= 1000;
}

/** When a NotReady pod turned NotReady, from its Ready condition (or when first seen so). */
export function notReadySince(pod: V1Pod, firstSeenNotReady?: number): number | undefined {
  if (isPodReady(pod)) return undefined;
  return time(condition(pod, 'Ready')?.lastTransitionTime) ?? firstSeenNotReady;
}

export interface OwnerInfo {
  kind: string;
  name: string;
}

/** Reasons the kubelet gives a container whose image it cannot get: the image's or its credentials' fault, never the node's. */
export const IMAGE_PULL_REASONS: ReadonlySet<string> = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'RegistryUnavailable', 'SignatureValidationFailed']);

export function podRef(pod: V1Pod): ObjectRef {
  return { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name!, namespace: pod.metadata!.namespace, uid: pod.metadata!.uid };
}
