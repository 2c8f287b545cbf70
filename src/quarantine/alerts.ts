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
import { ANN_ISOLATE, LABEL_ALERTS, LABEL_STATUS, STATUS_QUARANTINED } from '../core/names.js';
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
        startsAt: z.string().optional(),
      }),
    )
    .max(10_000),
});
export type AlertPayload = z.infer<typeof payloadSchema>;

export type AlertResult = {
  namespace?: string;
  pod?: string;
  result: 'requested' | 'already-requested' | 'withdrawn' | 'not-found' | 'not-opted-in' | 'not-allowed' | 'ignored' | 'failed';
  message?: string;
};

/** What a payload asks for: the answer for each alert, and the writes (one per pod) still to make. */
export interface AlertPlan {
  results: AlertResult[];
  /** Index into `results` of the alert each write answers, with the pod and the request to write (null: withdraw it). */
  writes: Array<{ index: number; namespace: string; pod: string; reason: string | null }>;
}

/** What the handler knows of a pod named by an alert (from sickbay's cache). */
export interface AlertTarget {
  /** Its `sickbay.io/isolate` request, if any. */
  request?: string;
  /** Its controller's kind; `Pod` for a bare pod. */
  ownerKind: string;
  quarantined: boolean;
}

export interface PodLookup {
  /** undefined: no such pod. */
  target(namespace: string, pod: string): AlertTarget | undefined;
  /** Opted in to sickbay at all (`sickbay.io/injection=enabled`). */
  isOptedIn(namespace: string): boolean;
  /** Opted in to alerts too (`sickbay.io/alerts=enabled`): only its own team's alerts should reach it. */
  alertsEnabled(namespace: string): boolean;
}

/**
 * The request an alert writes: `alert <name> (firing since <startsAt>): <summary>`. The
 * time tells a new firing from the one that wrote an older request (refreshed), and a
 * resolved alert from someone else's request (only its own is withdrawn).
 */
export function alertRequest(alertname: string | undefined, startsAt: string | undefined, summary: string | undefined): string {
  const since = startsAt && !Number.isNaN(Date.parse(startsAt)) ? ` (firing since ${new Date(startsAt).toISOString()})` : '';
  return `alert ${alertname ?? 'unnamed'}${since}${summary ? `: ${summary}` : ''}`.slice(0, 500);
}

/** The alert name and firing time of a request an alert wrote; undefined for a person's request. */
export function parseAlertRequest(request: string | undefined): { alertname: string; since?: number } | undefined {
  const m = /^alert (\S+)(?: \(firing since ([^)]+)\))?/.exec(request ?? '');
  if (!m) return undefined;
  const since = m[2] ? Date.parse(m[2]) : undefined;
  return { alertname: m[1]!, since: Number.isNaN(since) ? undefined : since };
}

/**
 * Pure: decides every alert's answer and the writes, one per pod whatever the number of
 * alerts naming it. An alert acts only in a namespace opted in to alerts (anyone who can
 * send Alertmanager an alert could otherwise take another team's pods out of service), and
 * never on a bare pod (nothing would replace it, and it would be deleted at its TTL).
 */
export function planAlerts(payload: AlertPayload, pods: PodLookup): AlertPlan {
  const results: AlertResult[] = [];
  const writes: AlertPlan['writes'] = [];
  const planned = new Set<string>();
  for (const alert of payload.alerts) {
    const { namespace, pod } = alert.labels;
    if (!namespace || !pod) {
      results.push({ namespace, pod, result: 'ignored', message: 'the alert has no namespace and pod labels' });
      continue;
    }
    const target = pods.target(namespace, pod);
    if (alert.status === 'resolved') {
      // A resolved alert withdraws the request it wrote while that request still waits
      // (skipped as systemic, say): a stale request must not count the pod as failing.
      const own = parseAlertRequest(target?.request);
      const key = `${namespace}/${pod}`;
      const startsAt = alert.startsAt ? Date.parse(alert.startsAt) : NaN;
      if (target && !target.quarantined && own && own.alertname === (alert.labels.alertname ?? 'unnamed') && own.since === startsAt && !planned.has(key) && pods.alertsEnabled(namespace)) {
        planned.add(key);
        writes.push({ index: results.length, namespace, pod, reason: null });
        results.push({ namespace, pod, result: 'withdrawn', message: 'the alert resolved before sickbay acted; its request is removed' });
      } else results.push({ namespace, pod, result: 'ignored', message: 'resolved alert' });
      continue;
    }
    if (!target) {
      results.push({ namespace, pod, result: 'not-found' });
      continue;
    }
    if (!pods.isOptedIn(namespace)) {
      results.push({ namespace, pod, result: 'not-opted-in', message: `namespace ${namespace} is not labelled sickbay.io/injection=enabled (or sickbay never acts there)` });
      continue;
    }
    if (!pods.alertsEnabled(namespace)) {
      results.push({ namespace, pod, result: 'not-allowed', message: `namespace ${namespace} is not labelled sickbay.io/alerts=enabled: alerts may not act on its pods` });
      continue;
    }
    if (target.ownerKind === 'Pod') {
      results.push({ namespace, pod, result: 'not-allowed', message: 'a bare pod: nothing would replace it, so an alert alone never takes it out of service (a person may, with sickbay.io/isolate)' });
      continue;
    }
    const key = `${namespace}/${pod}`;
    const reason = alertRequest(alert.labels.alertname, alert.startsAt, alert.annotations?.summary);
    const own = parseAlertRequest(target.request);
    const startsAt = alert.startsAt ? Date.parse(alert.startsAt) : NaN;
    // A request older than this firing (an earlier firing's, now stale) is written again.
    const stale = own !== undefined && own.since !== undefined && startsAt > own.since;
    if (target.quarantined || (target.request !== undefined && !stale) || planned.has(key)) {
      results.push({ namespace, pod, result: 'already-requested' });
      continue;
    }
    planned.add(key);
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
    target: (namespace, pod) => {
      const p = cache.pods.get(`${namespace}/${pod}`);
      if (!p) return undefined;
      return { request: p.metadata?.annotations?.[ANN_ISOLATE], ownerKind: cache.ownerOf(p).kind, quarantined: p.metadata?.labels?.[LABEL_STATUS] === STATUS_QUARANTINED };
    },
    isOptedIn: (namespace) => cache.isOptedIn(namespace),
    alertsEnabled: (namespace) => cache.namespaces.get(namespace)?.metadata?.labels?.[LABEL_ALERTS] === 'enabled',
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
        throw new TransportError(400, `body is not JSON: ${(err as Error).message}`, { cause: err });
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
          o.log.info(w.reason === null ? 'quarantine request withdrawn: its alert resolved' : 'quarantine requested by alert', { pod: `${w.namespace}/${w.pod}`, reason: w.reason });
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
