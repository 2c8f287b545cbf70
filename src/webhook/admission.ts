// AdmissionReview in, AdmissionReview out. Transport problems (wrong content type, a
// body too large, not JSON, not an AdmissionReview, no uid to echo) are HTTP 4xx; every
// policy outcome is a well-formed admission.k8s.io/v1 response echoing the request uid.
// A bug here answers 500 and the webhook's failurePolicy decides; the process lives on.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { V1Pod } from '@kubernetes/client-node';
import { createPatch } from 'rfc6902';
import { diffAny } from 'rfc6902/diff.js';
import type { Operation } from 'rfc6902/diff.js';
import type { Pointer } from 'rfc6902/pointer.js';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { readJsonRequest, sendJson, sendTransportError, TransportError } from '../server/http-body.js';
import { type InjectionSettings, injectPod } from './mutate-pod.js';
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

export interface AdmissionDeps {
  injection: InjectionSettings;
  /** The username of sickbay's ServiceAccount, the one identity the relabel guard lets through. */
  sickbayUsername: string;
  /** Further changes to an injected pod (node avoidance): copy-on-write, idempotent, no API calls. */
  decoratePod?: (pod: V1Pod, req: AdmissionRequest, warnings: string[]) => V1Pod;
  maxBodyBytes: number;
  /** Dry run: decide the injection, apply none, say in a warning what it would be. */
  dryRun?: boolean;
  /** Shared by both webhooks of a server; without it, no bound on bytes in flight. */
  budget?: AdmissionBudget;
  metrics?: Metrics;
  log?: Logger;
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

/**
 * The bytes of admission bodies being read and reviewed at once, across both webhooks.
 * A request that would take the total past the budget is answered 429 before its body
 * is read: memory stays bounded whatever arrives. The mutating webhook fails open (the
 * pod is admitted uninjected, and reported), the validating one closed (the write is
 * refused, and retried by its client).
 */
export class AdmissionBudget {
  private bytes = 0;
  constructor(readonly maxBytes: number) {}

  /** Reserves `n` bytes; false when they do not fit (nothing reserved). */
  take(n: number): boolean {
    if (this.bytes > 0 && this.bytes + n > this.maxBytes) return false;
    this.bytes += n;
    return true;
  }

  give(n: number) {
    this.bytes = Math.max(0, this.bytes - n);
  }

  private turns: Promise<void> = Promise.resolve();

  /**
   * For a large body: resolves on a turn of the event loop of its own, one large review
   * per turn, so the health endpoints and small reviews are answered between them (eight
   * 2 MiB bodies parsed back to back held the loop for a third of a second).
   */
  turn(): Promise<void> {
    const mine = this.turns.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    this.turns = mine;
    return mine;
  }
}

/** Bodies from this size on are parsed one per event-loop turn (AdmissionBudget.turn). */
const LARGE_BODY_BYTES = 256 * 1024;

export function reviewMutation(req: AdmissionRequest, deps: AdmissionDeps): AdmissionResponse {
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
  const injected = injectPod(original, deps.injection);
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

export function reviewValidation(req: AdmissionRequest, deps: AdmissionDeps): AdmissionResponse {
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

/** Parses and checks an AdmissionReview body; throws TransportError for what is not one. */
export function parseReview(body: Buffer): AdmissionRequest {
  let review: unknown;
  try {
    review = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new TransportError(400, `body is not JSON: ${(err as Error).message}`);
  }
  if (!review || typeof review !== 'object' || Array.isArray(review)) throw new TransportError(400, 'body is not an AdmissionReview object');
  const r = review as { apiVersion?: unknown; kind?: unknown; request?: unknown };
  if (r.kind !== 'AdmissionReview') throw new TransportError(400, `expected kind AdmissionReview, got ${JSON.stringify(r.kind)}`);
  if (r.apiVersion !== ADMISSION_API_VERSION) {
    throw new TransportError(400, `unsupported apiVersion ${JSON.stringify(r.apiVersion)}; sickbay speaks ${ADMISSION_API_VERSION} (set admissionReviewVersions: [v1])`);
  }
  const req = r.request as AdmissionRequest | undefined;
  if (!req || typeof req !== 'object' || Array.isArray(req)) throw new TransportError(400, 'AdmissionReview has no request');
  if (typeof req.uid !== 'string' || req.uid === '') throw new TransportError(400, 'AdmissionReview request has no uid to answer to');
  return req;
}

/** A plain node:http handler, so it can run under express or a bare server alike. */
export function admissionHandler(webhook: Webhook, deps: AdmissionDeps) {
  const review = webhook === 'mutate' ? reviewMutation : reviewValidation;
  return async (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    let outcome = 'error';
    let reserved = 0;
    try {
      const declared = Number(req.headers['content-length']);
      reserved = Number.isFinite(declared) && declared >= 0 && declared <= deps.maxBodyBytes ? declared : deps.maxBodyBytes;
      if (deps.budget && !deps.budget.take(reserved)) {
        reserved = 0;
        req.resume();
        throw new TransportError(429, `sickbay is reviewing ${deps.budget.maxBytes} bytes of admission requests already; try again`);
      }
      const body = await readJsonRequest(req, `/${webhook}`, deps.maxBodyBytes);
      if (deps.budget && body.length >= LARGE_BODY_BYTES) await deps.budget.turn();
      const request = parseReview(body);
      const response = review(request, deps);
      outcome = !response.allowed ? 'denied' : response.patch ? 'patched' : 'allowed';
      sendJson(res, 200, { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response });
      if (!response.allowed) deps.log?.info('denied', { webhook, uid: request.uid, namespace: request.namespace, name: request.name, user: request.userInfo?.username });
    } catch (err) {
      if (err instanceof TransportError) {
        outcome = `http_${err.status}`;
        sendTransportError(res, err);
      } else {
        deps.log?.error('admission handler failed', { webhook, error: err instanceof Error ? err.stack : String(err) });
        sendJson(res, 500, { error: 'internal error; the webhook failurePolicy applies' });
      }
    } finally {
      if (reserved) deps.budget?.give(reserved);
      deps.metrics?.admission(webhook, outcome, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
}
