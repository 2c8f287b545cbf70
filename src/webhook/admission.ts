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
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { type InjectionSettings, injectPod } from './mutate-pod.js';
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
  metrics?: Metrics;
  log?: Logger;
}

export type Webhook = 'mutate' | 'validate';

class TransportError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A pod, or one of the named subresources of a pod ('' is the pod itself). */
function isPod(req: AdmissionRequest, subResources: string[] = ['']): boolean {
  return (req.kind?.group ?? '') === '' && req.kind?.kind === 'Pod' && subResources.includes(req.subResource ?? '');
}

function asPod(v: unknown): V1Pod | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as V1Pod) : undefined;
}

// The diff, tuned to how injectPod builds its result. Subtrees the copy-on-write
// mutation did not touch are the original's own objects: equal by identity. Arrays of
// equal length are diffed index by index (the mutation never reorders or removes);
// rfc6902's default, an edit distance over deep-compared elements, costs far more.
function diffMutation(input: unknown, output: unknown, ptr: Pointer): Operation[] {
  if (input === output) return [];
  if (Array.isArray(input) && Array.isArray(output) && input.length === output.length) {
    return input.flatMap((x, i) => diffMutation(x, output[i], ptr.add(String(i))));
  }
  return diffAny(input, output, ptr, diffMutation);
}

export function reviewMutation(req: AdmissionRequest, deps: AdmissionDeps): AdmissionResponse {
  const allow: AdmissionResponse = { uid: req.uid, allowed: true };
  if (!isPod(req) || req.operation !== 'CREATE') return allow;
  const original = asPod(req.object);
  if (!original) return { ...allow, warnings: ['sickbay: the request carried no pod object; nothing injected'] };
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
  const verdict = validatePod(oldPod, asPod(req.object), req.userInfo?.username ?? '', deps.sickbayUsername);
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

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      return reject(new TransportError(413, `body of ${declared} bytes is over the ${limit}-byte limit`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        reject(new TransportError(413, `body is over the ${limit}-byte limit`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => over || resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

/** A plain node:http handler, so it can run under express or a bare server alike. */
export function admissionHandler(webhook: Webhook, deps: AdmissionDeps) {
  const review = webhook === 'mutate' ? reviewMutation : reviewValidation;
  return async (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    let outcome = 'error';
    try {
      if (req.method !== 'POST') throw new TransportError(405, `use POST for /${webhook}`);
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/json') throw new TransportError(415, `content type must be application/json, got ${JSON.stringify(type || 'none')}`);
      const request = parseReview(await readBody(req, deps.maxBodyBytes));
      const response = review(request, deps);
      outcome = !response.allowed ? 'denied' : response.patch ? 'patched' : 'allowed';
      send(res, 200, { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response });
      if (!response.allowed) deps.log?.info('denied', { webhook, uid: request.uid, namespace: request.namespace, name: request.name, user: request.userInfo?.username });
    } catch (err) {
      if (err instanceof TransportError) {
        outcome = `http_${err.status}`;
        if (err.status === 413) res.setHeader('connection', 'close');
        send(res, err.status, { error: err.message });
      } else {
        deps.log?.error('admission handler failed', { webhook, error: err instanceof Error ? err.stack : String(err) });
        send(res, 500, { error: 'internal error; the webhook failurePolicy applies' });
      }
    } finally {
      deps.metrics?.admission(webhook, outcome, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
}
