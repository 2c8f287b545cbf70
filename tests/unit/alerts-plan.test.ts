// What an Alertmanager payload asks of sickbay, decided without I/O: one write per pod,
// only where a namespace allows alerts, never for a bare pod, and a resolved alert
// withdrawing its own pending request.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AlertPayload, type AlertTarget, alertRequest, parseAlertRequest, planAlerts, type PodLookup } from '../../src/quarantine/alerts.js';

const SINCE = '2026-12-01T10:00:00.000Z';
const targets = new Map<string, AlertTarget>([
  ['shop/a', { ownerKind: 'ReplicaSet', quarantined: false }],
  ['shop/b', { ownerKind: 'ReplicaSet', quarantined: false, request: 'a person asked' }],
  ['shop/bare', { ownerKind: 'Pod', quarantined: false }],
  ['shop/old', { ownerKind: 'ReplicaSet', quarantined: false, request: `alert Errors (firing since 2026-11-01T00:00:00.000Z)` }],
  ['shop/pending', { ownerKind: 'ReplicaSet', quarantined: false, request: `alert Latency (firing since ${SINCE}): slow` }],
  ['shop/done', { ownerKind: 'ReplicaSet', quarantined: true, request: `alert Latency (firing since ${SINCE}): slow` }],
  ['kube-system/dns', { ownerKind: 'ReplicaSet', quarantined: false }],
  ['team-b/x', { ownerKind: 'ReplicaSet', quarantined: false }],
]);
const pods: PodLookup = {
  target: (ns, pod) => targets.get(`${ns}/${pod}`),
  isOptedIn: (ns) => ns === 'shop' || ns === 'team-b',
  alertsEnabled: (ns) => ns === 'shop',
};
const firing = (labels: Record<string, string>, summary?: string, startsAt?: string) => ({ status: 'firing', labels, ...(summary ? { annotations: { summary } } : {}), ...(startsAt ? { startsAt } : {}) });

describe('planAlerts', () => {
  it('answers every alert and writes each pod once', () => {
    const payload: AlertPayload = {
      alerts: [
        firing({ alertname: 'Errors', namespace: 'shop', pod: 'a' }, '5xx', SINCE),
        firing({ alertname: 'Latency', namespace: 'shop', pod: 'a' }),
        firing({ alertname: 'Errors', namespace: 'shop', pod: 'b' }),
        firing({ alertname: 'Errors', namespace: 'shop', pod: 'gone' }),
        firing({ alertname: 'Errors', namespace: 'kube-system', pod: 'dns' }),
        firing({ alertname: 'NoLabels' }),
        { status: 'resolved', labels: { namespace: 'shop', pod: 'a' } },
      ],
    };
    const plan = planAlerts(payload, pods);
    assert.deepEqual(
      plan.results.map((r) => r.result),
      ['requested', 'already-requested', 'already-requested', 'not-found', 'not-opted-in', 'ignored', 'ignored'],
    );
    assert.deepEqual(plan.writes, [{ index: 0, namespace: 'shop', pod: 'a', reason: `alert Errors (firing since ${SINCE}): 5xx` }]);
  });

  it("another team's namespace, not opted in to alerts, is refused: anyone who reaches Alertmanager could otherwise take its pods out", () => {
    const plan = planAlerts({ alerts: [firing({ alertname: 'Errors', namespace: 'team-b', pod: 'x' })] }, pods);
    assert.deepEqual(plan.results.map((r) => r.result), ['not-allowed']);
    assert.match(plan.results[0]!.message!, /not labelled sickbay\.io\/alerts=enabled/);
    assert.deepEqual(plan.writes, []);
  });

  it('a bare pod is never requested by an alert: nothing would replace it', () => {
    const plan = planAlerts({ alerts: [firing({ alertname: 'Errors', namespace: 'shop', pod: 'bare' })] }, pods);
    assert.deepEqual(plan.results.map((r) => r.result), ['not-allowed']);
    assert.match(plan.results[0]!.message!, /a bare pod/);
    assert.deepEqual(plan.writes, []);
  });

  it('a request older than the alert firing now is written again; one of the same firing is not', () => {
    const plan = planAlerts({ alerts: [firing({ alertname: 'Errors', namespace: 'shop', pod: 'old' }, undefined, SINCE), firing({ alertname: 'Latency', namespace: 'shop', pod: 'pending' }, 'slow', SINCE)] }, pods);
    assert.deepEqual(plan.results.map((r) => r.result), ['requested', 'already-requested']);
    assert.deepEqual(plan.writes.map((w) => w.reason), [`alert Errors (firing since ${SINCE})`]);
  });

  it("a resolved alert withdraws its own pending request, not another alert's, an earlier firing's, a person's, or a quarantined pod's", () => {
    const resolved = (pod: string, alertname: string, startsAt = SINCE) => ({ status: 'resolved', labels: { alertname, namespace: 'shop', pod }, startsAt });
    const plan = planAlerts({ alerts: [resolved('pending', 'Latency'), resolved('pending', 'Errors'), resolved('old', 'Errors'), resolved('b', 'Errors'), resolved('done', 'Latency')] }, pods);
    assert.deepEqual(plan.results.map((r) => r.result), ['withdrawn', 'ignored', 'ignored', 'ignored', 'ignored']);
    assert.deepEqual(plan.writes, [{ index: 0, namespace: 'shop', pod: 'pending', reason: null }]);
  });

  it('caps the request at 500 characters, and reads back the alert name and its firing time', () => {
    const plan = planAlerts({ alerts: [firing({ alertname: 'X', namespace: 'shop', pod: 'a' }, 'ü'.repeat(1000))] }, pods);
    assert.equal(plan.writes[0]!.reason!.length, 500);
    assert.deepEqual(parseAlertRequest(alertRequest('Latency', SINCE, 'slow')), { alertname: 'Latency', since: Date.parse(SINCE) });
    assert.deepEqual(parseAlertRequest(alertRequest('Latency', undefined, undefined)), { alertname: 'Latency', since: undefined });
    assert.equal(parseAlertRequest('a person asked'), undefined);
  });
});
