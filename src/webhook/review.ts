// The admission reviews, pure: an AdmissionRequest in, an AdmissionResponse out, no I/O.
// The mutation injects the shim (and the decorations, node avoidance) and answers with a
// JSON Patch; the validation guards sickbay's marks and quarantined pods. A request whose
// pod is malformed is a TransportError (400): the transport (admission.ts) answers it.
import type { V1Pod } from '@kubernetes/client-node';
import { createPatch } from 'rfc6902';
import { diffAny } from 'rfc6902/diff.js';
import type { Operation } from 'rfc6902/diff.js';
import type { Pointer } from 'rfc6902/pointer.js';
import { TransportError } from '../server/http-body.js';
import { type InjectionSettings, injectPod, type NamespaceView } from './mutate-pod.js';
import { metadataProblem, podShapeProblem } from './pod-shape.js';
import { validatePod } from './validate-relabel.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  resource?: { group?: string; version?: string; resource?: string };
  subResource?: string;
  namespace?: string;
  name?: string;
  operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  userInfo?: { username?: string; groups?: string[] };
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
}

/** What the review reads: pure settings and pure decorations, no I/O. */
export interface ReviewDeps {
  injection: InjectionSettings;
  /** The username of sickbay's ServiceAccount, the one identity the relabel guard lets through. */
  sickbayUsername: string;
  /** Further changes to an injected pod (node avoidance): copy-on-write, idempotent, no API calls. */
  decoratePod?: (pod: V1Pod, req: AdmissionRequest, warnings: string[]) => V1Pod;
  /** The pod's namespace as the informer cache holds it (its annotations), when known. */
  namespaceOf?: (name: string) => NamespaceView | undefined;
  /** Dry run: decide the injection, apply none, say in a warning what it would be. */
  dryRun?: boolean;
}

export type Webhook = 'mutate' | 'validate';

/** A pod, or one of the named subresources of a pod ('' is the pod itself). */
function isPod(req: AdmissionRequest, subResources: string[] = ['']): boolean {
  return (req.kind?.group ?? '') === '' && req.kind?.kind === 'Pod' && subResources.includes(req.subResource ?? '');
}

const listLength = (v: unknown) => (Array.isArray(v) ? v.length : 0);

function asPod(v: unknown): V1Pod | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as V1Pod) : undefined;
}

// The diff, tuned to how injectPod builds its result. Subtrees the copy-on-write
// mutation did not touch are the original's own objects: equal by identity. Arrays of
// equal length are diffed index by index (the mutation never reorders or removes);
// rfc6902's default, an edit distance over deep-compared elements, costs far more.
// An array that grew (volumes, mounts, init containers appended) is diffed the same way
// over the common length, then the new elements are added at the end: linear, whatever
// its length (the edit distance was quadratic, and recursed deep enough to overflow the
// stack on a pod of 40,000 containers).
function diffMutation(input: unknown, output: unknown, ptr: Pointer): Operation[] {
  if (input === output) return [];
  if (Array.isArray(input) && Array.isArray(output) && input.length <= output.length) {
    const ops: Operation[] = [];
    for (let i = 0; i < input.length; i++) for (const op of diffMutation(input[i], output[i], ptr.add(String(i)))) ops.push(op);
    for (let i = input.length; i < output.length; i++) ops.push({ op: 'add', path: ptr.add('-').toString(), value: output[i] });
    return ops;
  }
  return diffAny(input, output, ptr, diffMutation);
}

/**
 * Above this many containers (init, app and ephemeral) a pod is admitted as it is, with a
 * warning: real pods have a handful, and the review's work and its patch grow with each
 * (10,000 containers took half a second of CPU and an 8 MB patch).
 */
export const MAX_INJECTED_CONTAINERS = 64;

export function reviewMutation(req: AdmissionRequest, deps: ReviewDeps): AdmissionResponse {
  const allow: AdmissionResponse = { uid: req.uid, allowed: true };
  if (!isPod(req) || req.operation !== 'CREATE') return allow;
  const original = asPod(req.object);
  if (!original) return { ...allow, warnings: ['sickbay: the request carried no pod object; nothing injected'] };
  // Counted before the shape is checked: a pod too wide to inject is admitted as it is
  // without walking its containers.
  const spec = original.spec;
  const containers = listLength(spec?.containers) + listLength(spec?.initContainers) + listLength(spec?.ephemeralContainers);
  if (containers > MAX_INJECTED_CONTAINERS) {
    return { ...allow, warnings: [`sickbay injects pods of at most ${MAX_INJECTED_CONTAINERS} containers; this one has ${containers}: admitted as it is, not supervised`] };
  }
  const malformed = podShapeProblem(original as Record<string, unknown>);
  if (malformed) throw new TransportError(400, `the request's pod is not a valid Pod: ${malformed}`);
  const injected = injectPod(original, deps.injection, deps.namespaceOf?.(req.namespace ?? original.metadata?.namespace ?? '') ?? {});
  const { warnings, skipped } = injected;
  const pod = !skipped && deps.decoratePod ? deps.decoratePod(injected.pod, req, warnings) : injected.pod;
  const ops = skipped ? [] : createPatch(original, pod, diffMutation);
  const res: AdmissionResponse = { ...allow };
  if (deps.dryRun) {
    if (ops.length > 0) warnings.push(`sickbay dry run: would inject this pod (${ops.length} changes: the shim, its supervisor and probes); nothing was changed`);
  } else if (ops.length > 0) {
    res.patchType = 'JSONPatch';
    res.patch = Buffer.from(JSON.stringify(ops)).toString('base64');
  }
  if (warnings.length > 0) res.warnings = warnings;
  return res;
}

export function reviewValidation(req: AdmissionRequest, deps: ReviewDeps): AdmissionResponse {
  // Pods and their status subresource (a status update can carry labels and annotations).
  if (!isPod(req, ['', 'status']) || (req.operation !== 'UPDATE' && req.operation !== 'CREATE')) return { uid: req.uid, allowed: true };
  const oldPod = req.operation === 'UPDATE' ? asPod(req.oldObject) : undefined;
  const pod = asPod(req.object);
  for (const [which, p] of [['object', pod], ['oldObject', oldPod]] as const) {
    const malformed = p && metadataProblem(p as Record<string, unknown>);
    if (malformed) throw new TransportError(400, `the request's ${which} is not a valid Pod: ${malformed}`);
  }
  const verdict = validatePod(oldPod, pod, req.userInfo?.username ?? '', deps.sickbayUsername);
  if (verdict.allowed) return { uid: req.uid, allowed: true };
  return { uid: req.uid, allowed: false, status: { code: 403, reason: 'Forbidden', message: verdict.message } };
}

