// What an Alertmanager payload asks of sickbay, decided without I/O: one write per pod.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AlertPayload, planAlerts, type PodLookup } from '../../src/quarantine/alerts.js';

const pods: PodLookup = {
  requested: (ns, pod) => new Map([['shop/a', false], ['shop/b', true], ['kube-system/dns', false]]).get(`${ns}/${pod}`),
  isOptedIn: (ns) => ns === 'shop',
};
const firing = (labels: Record<string, string>, summary?: string) => ({ status: 'firing', labels, ...(summary ? { annotations: { summary } } : {}) });

describe('planAlerts', () => {
  it('answers every alert and writes each pod once', () => {
    const payload: AlertPayload = {
      alerts: [
        firing({ alertname: 'Errors', namespace: 'shop', pod: 'a' }, '5xx'),
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
    assert.deepEqual(plan.writes, [{ index: 0, namespace: 'shop', pod: 'a', reason: 'alert Errors: 5xx' }]);
  });

  it('caps the reason at 500 characters', () => {
    const plan = planAlerts({ alerts: [firing({ alertname: 'X', namespace: 'shop', pod: 'a' }, 'ü'.repeat(1000))] }, pods);
    assert.equal(plan.writes[0]!.reason.length, 500);
  });
});
