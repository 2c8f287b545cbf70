// AdmissionReview in, AdmissionReview out, over HTTP. Transport problems (wrong content
// type, a body too large, not JSON, not an AdmissionReview, no uid to echo) are HTTP 4xx;
// every policy outcome (review.ts, pure) is a well-formed admission.k8s.io/v1 response
// echoing the request uid. A bug here answers 500 and the webhook's failurePolicy
// decides; the process lives on.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import { readJsonRequest, sendJson, sendTransportError, TransportError } from '../server/http-body.js';
import { ADMISSION_API_VERSION, type AdmissionRequest, reviewMutation, type ReviewDeps, reviewValidation, type Webhook } from './review.js';

/** The review's settings, and what serving it over HTTP needs. */
export interface AdmissionDeps extends ReviewDeps {
  maxBodyBytes: number;
  /** Shared by both webhooks of a server; without it, no bound on bytes in flight. */
  budget?: AdmissionBudget;
  metrics?: Metrics;
  log: Logger;
}

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
/** Parses and checks an AdmissionReview body; throws TransportError for what is not one. */
export function parseReview(body: Buffer): AdmissionRequest {
  let review: unknown;
  try {
    review = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new TransportError(400, `body is not JSON: ${(err as Error).message}`, { cause: err });
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
    // The budget holds the bytes actually read, as they arrive: a slow upload, or one
    // without a content-length, holds what it sent, not the largest body there could be.
    let reserved = 0;
    const budget = deps.budget;
    const admit = budget
      ? (n: number) => {
          if (!budget.take(n)) throw new TransportError(429, `sickbay is reviewing ${budget.maxBytes} bytes of admission requests already; try again`);
          reserved += n;
        }
      : undefined;
    try {
      const body = await readJsonRequest(req, `/${webhook}`, deps.maxBodyBytes, admit);
      if (deps.budget && body.length >= LARGE_BODY_BYTES) await deps.budget.turn();
      const request = parseReview(body);
      const response = review(request, deps);
      outcome = !response.allowed ? 'denied' : response.patch ? 'patched' : 'allowed';
      sendJson(res, 200, { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response });
      if (!response.allowed) deps.log.info('denied', { webhook, uid: request.uid, namespace: request.namespace, name: request.name, user: request.userInfo?.username });
    } catch (err) {
      if (err instanceof TransportError) {
        outcome = `http_${err.status}`;
        sendTransportError(res, err);
      } else {
        deps.log.error('admission handler failed', { webhook, error: err instanceof Error ? err.stack : String(err) });
        sendJson(res, 500, { error: 'internal error; the webhook failurePolicy applies' });
      }
    } finally {
      if (reserved) deps.budget?.give(reserved);
      deps.metrics?.admission(webhook, outcome, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
}
