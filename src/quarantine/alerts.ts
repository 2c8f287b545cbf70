// POST /alerts: Alertmanager's webhook payload names pods to quarantine. Every replica
// serves it: it turns each firing alert into the `sickbay.io/isolate` annotation on the
// pod, which the leader's controller acts on. The request is thereby persisted in the
// cluster, survives a leader change, and shows who asked.
//
// Bounded: requests are rate limited (429 with Retry-After), a pod named by many alerts
// of one payload is written once, writes run a few at a time, each is aborted after
// CALL_TIMEOUT_MS, and writes not started within BUDGET_MS are answered as not attempted
// (Alertmanager sends the group again).
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { codeOf, errorText, mergePatchUntil } from '../kube/api.js';
import type { Logger } from '../core/log.js';
import { ANN_ISOLATE } from '../core/names.js';
import { readJsonRequest, sendJson, sendTransportError, TransportError } from '../server/http-body.js';
import { TokenBucket } from '../util/rate-limiter.js';
import type { ClusterCache } from '../kube/cluster-cache.js';

const CALL_TIMEOUT_MS = 5_000;
/** Alertmanager waits 10 s for a webhook by default; answer before that. */
const BUDGET_MS = 8_000;
const PARALLEL_WRITES = 8;

// The parts of Alertmanager's webhook payload (version 4) sickbay reads.
const payloadSchema = z.object({
  version: z.string().optional(),
  status: z.string().optional(),
  alerts: z
    .array(
      z.object({
        status: z.string().optional(),
        labels: z.record(z.string(), z.string()),
        annotations: z.record(z.string(), z.string()).optional(),
      }),
    )
    .max(10_000),
});
export type AlertPayload = z.infer<typeof payloadSchema>;

export type AlertResult = {
  namespace?: string;
  pod?: string;
  result: 'requested' | 'already-requested' | 'not-found' | 'not-opted-in' | 'ignored' | 'failed';
  message?: string;
};

/** What a payload asks for: the answer for each alert, and the writes (one per pod) still to make. */
export interface AlertPlan {
  results: AlertResult[];
  /** Index into `results` of the alert each write answers, with the pod and the reason to write. */
  writes: Array<{ index: number; namespace: string; pod: string; reason: string }>;
}

export interface PodLookup {
  /** undefined: no such pod; else whether it carries the isolate annotation already. */
  requested(namespace: string, pod: string): boolean | undefined;
  isOptedIn(namespace: string): boolean;
}

/** Pure: decides every alert's answer and the writes, one per pod whatever the number of alerts naming it. */
export function planAlerts(payload: AlertPayload, pods: PodLookup): AlertPlan {
  const results: AlertResult[] = [];
  const writes: AlertPlan['writes'] = [];
  const planned = new Set<string>();
  for (const alert of payload.alerts) {
    const { namespace, pod } = alert.labels;
    if (alert.status === 'resolved') {
      results.push({ namespace, pod, result: 'ignored', message: 'resolved alert' });
      continue;
    }
    if (!namespace || !pod) {
      results.push({ namespace, pod, result: 'ignored', message: 'the alert has no namespace and pod labels' });
      continue;
    }
    const requested = pods.requested(namespace, pod);
    if (requested === undefined) {
      results.push({ namespace, pod, result: 'not-found' });
      continue;
    }
    if (!pods.isOptedIn(namespace)) {
      results.push({ namespace, pod, result: 'not-opted-in', message: `namespace ${namespace} is not labelled sickbay.io/injection=enabled (or sickbay never acts there)` });
      continue;
    }
    const key = `${namespace}/${pod}`;
    if (requested || planned.has(key)) {
      results.push({ namespace, pod, result: 'already-requested' });
      continue;
    }
    planned.add(key);
    const reason = `alert ${alert.labels.alertname ?? 'unnamed'}${alert.annotations?.summary ? `: ${alert.annotations.summary}` : ''}`.slice(0, 500);
    writes.push({ index: results.length, namespace, pod, reason });
    results.push({ namespace, pod, result: 'requested' });
  }
  return { results, writes };
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!.trim());
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface AlertsOptions {
  token: string;
  maxBodyBytes: number;
  /** Requests a minute, bursting to as many. */
  ratePerMinute: number;
  log: Logger;
  callTimeoutMs?: number;
  budgetMs?: number;
}

export function alertsHandler(kc: KubeConfig, cache: ClusterCache, o: AlertsOptions) {
  const core = kc.makeApiClient(CoreV1Api);
  const bucket = new TokenBucket(o.ratePerMinute);
  const lookup: PodLookup = {
    requested: (namespace, pod) => {
      const p = cache.pods.get(`${namespace}/${pod}`);
      return p ? p.metadata?.annotations?.[ANN_ISOLATE] !== undefined : undefined;
    },
    isOptedIn: (namespace) => cache.isOptedIn(namespace),
  };
  return async (req: IncomingMessage, res: ServerResponse) => {
    if (!o.token) return sendJson(res, 503, { error: 'POST /alerts is disabled: set SICKBAY_ALERTS_TOKEN' });
    if (!tokenMatches(req.headers.authorization, o.token)) return sendJson(res, 401, { error: 'missing or wrong bearer token' });
    if (!bucket.tryTake()) {
      req.resume();
      const retry = Math.max(1, Math.ceil(bucket.waitMs() / 1000));
      return sendJson(res, 429, { error: `over ${o.ratePerMinute} requests a minute; retry in ${retry} s` }, { 'retry-after': String(retry) });
    }
    let payload: AlertPayload;
    try {
      const body = await readJsonRequest(req, '/alerts', o.maxBodyBytes);
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch (err) {
        throw new TransportError(400, `body is not JSON: ${(err as Error).message}`);
      }
      const parsed = payloadSchema.safeParse(json);
      if (!parsed.success) {
        throw new TransportError(400, `not an Alertmanager webhook payload: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
      }
      payload = parsed.data;
    } catch (err) {
      if (err instanceof TransportError) return sendTransportError(res, err);
      throw err;
    }

    const plan = planAlerts(payload, lookup);
    const deadline = Date.now() + (o.budgetMs ?? BUDGET_MS);
    const pending = [...plan.writes];
    const writer = async () => {
      for (let w = pending.shift(); w; w = pending.shift()) {
        const result = plan.results[w.index]!;
        if (Date.now() > deadline) {
          Object.assign(result, { result: 'failed', message: 'not attempted: the request ran out of time; Alertmanager will send it again' });
          continue;
        }
        try {
          const signal = AbortSignal.timeout(o.callTimeoutMs ?? CALL_TIMEOUT_MS);
          await core.patchNamespacedPod({ name: w.pod, namespace: w.namespace, body: { metadata: { annotations: { [ANN_ISOLATE]: w.reason } } } }, mergePatchUntil(signal));
          o.log.info('quarantine requested by alert', { pod: `${w.namespace}/${w.pod}`, reason: w.reason });
        } catch (err) {
          const timedOut = err instanceof Error && err.name === 'AbortError';
          Object.assign(result, { result: codeOf(err) === 404 ? 'not-found' : 'failed', message: timedOut ? `the API server did not answer within ${o.callTimeoutMs ?? CALL_TIMEOUT_MS} ms` : errorText(err) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_WRITES, pending.length) }, writer));
    sendJson(res, 200, { results: plan.results });
  };
}
