import { randomUUID } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { applyPatch, type Operation } from 'rfc6902';
import type { AdmissionRequest, AdmissionResponse } from '../../src/webhook/review.js';

export function podCreateRequest(pod: V1Pod, namespace = pod.metadata?.namespace ?? 'default'): AdmissionRequest {
  return {
    uid: randomUUID(),
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace,
    operation: 'CREATE',
    userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
    object: pod,
  };
}

export function podUpdateRequest(oldPod: V1Pod, pod: V1Pod, username: string): AdmissionRequest {
  return { ...podCreateRequest(pod), operation: 'UPDATE', oldObject: oldPod, userInfo: { username } };
}

export function review(request: AdmissionRequest) {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
}

/** The object the API server would store after applying the response's patch. */
export function patched<T>(original: T, res: AdmissionResponse): T {
  const copy = structuredClone(original);
  if (!res.patch) return copy;
  const ops = JSON.parse(Buffer.from(res.patch, 'base64').toString('utf8')) as Operation[];
  const errors = applyPatch(copy, ops).filter((e) => e !== null);
  if (errors.length > 0) throw new Error(`patch did not apply: ${errors.map(String).join('; ')}`);
  return copy;
}
