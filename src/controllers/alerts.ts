// POST /alerts: Alertmanager's webhook payload names pods to quarantine. Every replica
// serves it: it turns each firing alert into the `sickbay.io/isolate` annotation on the
// pod, which the leader's controller acts on. The request is thereby persisted in the
// cluster, survives a leader change, and shows who asked.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { z } from 'zod';
import { codeOf, errorText, mergePatch } from '../kube/api.js';
import type { Logger } from '../log.js';
import { ANN_ISOLATE } from '../names.js';
import type { ClusterCache } from './cluster-cache.js';


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

export type AlertResult = { namespace?: string; pod?: string; result: 'requested' | 'already-requested' | 'not-found' | 'not-opted-in' | 'ignored' | 'failed'; message?: string };

function send(res: ServerResponse, status: number, body: unknown) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!.trim());
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function alertsHandler(kc: KubeConfig, cache: ClusterCache, o: { token: string; maxBodyBytes: number; log: Logger }) {
  const core = kc.makeApiClient(CoreV1Api);
  return async (req: IncomingMessage, res: ServerResponse) => {
    if (!o.token) return send(res, 503, { error: 'POST /alerts is disabled: set SICKBAY_ALERTS_TOKEN' });
    if (!tokenMatches(req.headers.authorization, o.token)) return send(res, 401, { error: 'missing or wrong bearer token' });
    let raw = '';
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > o.maxBodyBytes) return send(res, 413, { error: `body over the ${o.maxBodyBytes}-byte limit` });
      raw += chunk;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (err) {
      return send(res, 400, { error: `body is not JSON: ${(err as Error).message}` });
    }
    const parsed = payloadSchema.safeParse(json);
    if (!parsed.success) {
      return send(res, 400, { error: `not an Alertmanager webhook payload: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}` });
    }
    const results: AlertResult[] = [];
    for (const alert of parsed.data.alerts) {
      const { namespace, pod } = alert.labels;
      if (alert.status === 'resolved') {
        results.push({ namespace, pod, result: 'ignored', message: 'resolved alert' });
        continue;
      }
      if (!namespace || !pod) {
        results.push({ namespace, pod, result: 'ignored', message: 'the alert has no namespace and pod labels' });
        continue;
      }
      const cached = cache.pods.get(`${namespace}/${pod}`);
      if (!cached) {
        results.push({ namespace, pod, result: 'not-found' });
        continue;
      }
      if (!cache.isOptedIn(namespace)) {
        results.push({ namespace, pod, result: 'not-opted-in', message: `namespace ${namespace} is not labelled sickbay.io/injection=enabled` });
        continue;
      }
      if (cached.metadata?.annotations?.[ANN_ISOLATE] !== undefined) {
        results.push({ namespace, pod, result: 'already-requested' });
        continue;
      }
      const reason = `alert ${alert.labels.alertname ?? 'unnamed'}${alert.annotations?.summary ? `: ${alert.annotations.summary}` : ''}`.slice(0, 500);
      try {
        await core.patchNamespacedPod({ name: pod, namespace, body: { metadata: { annotations: { [ANN_ISOLATE]: reason } } } }, mergePatch);
        results.push({ namespace, pod, result: 'requested' });
        o.log.info('quarantine requested by alert', { pod: `${namespace}/${pod}`, reason });
      } catch (err) {
        results.push({ namespace, pod, result: codeOf(err) === 404 ? 'not-found' : 'failed', message: errorText(err) });
      }
    }
    send(res, 200, { results });
  };
}
