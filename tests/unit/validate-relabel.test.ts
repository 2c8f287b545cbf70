import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { validateRelabel } from '../../src/webhook/validate-relabel.js';

const SICKBAY = 'system:serviceaccount:sickbay-system:sickbay';
const quarantined: V1Pod = {
  metadata: {
    name: 'web-abc',
    namespace: 'shop',
    labels: { 'sickbay.io/status': 'quarantined', tier: 'web', team: 'a' },
    annotations: { 'sickbay.io/original-labels': JSON.stringify({ app: 'web', 'pod-template-hash': '5d9f' }), 'sickbay.io/reason': 'NotReady for 10s' },
  },
};
const edit = (f: (p: V1Pod) => void): V1Pod => {
  const p = structuredClone(quarantined);
  f(p);
  return p;
};

describe('relabel guard', () => {
  const cases: Array<[string, V1Pod, V1Pod, string, RegExp | null]> = [
    ['a person removes the status label', quarantined, edit((p) => delete p.metadata!.labels!['sickbay.io/status']), 'alice', /only sickbay may change label sickbay\.io\/status.*sickbay release shop\/web-abc/],
    ['a person changes the reason', quarantined, edit((p) => (p.metadata!.annotations!['sickbay.io/reason'] = 'fine')), 'alice', /annotation sickbay\.io\/reason/],
    ['a person adds a selector label back', quarantined, edit((p) => (p.metadata!.labels!.app = 'web')), 'alice', /adding back app=web/],
    ['a person adds two back, both named', quarantined, edit((p) => Object.assign(p.metadata!.labels!, { app: 'web', 'pod-template-hash': '5d9f' })), 'bob', /app=web, pod-template-hash=5d9f/],
    ['a person adds the key with another value', quarantined, edit((p) => (p.metadata!.labels!.app = 'debug')), 'alice', null],
    ['a person adds an unrelated label', quarantined, edit((p) => (p.metadata!.labels!.investigating = 'alice')), 'alice', null],
    ['sickbay removes the status label', quarantined, edit((p) => delete p.metadata!.labels!['sickbay.io/status']), SICKBAY, null],
    ['sickbay restores labels', quarantined, edit((p) => (p.metadata!.labels!.app = 'web')), SICKBAY, null],
    ['a pod that is not quarantined', { metadata: { labels: { app: 'web' } } }, { metadata: { labels: {} } }, 'alice', null],
    ['a garbled original-labels record still guards the status', edit((p) => (p.metadata!.annotations!['sickbay.io/original-labels'] = '{nope')), edit((p) => {
      p.metadata!.annotations!['sickbay.io/original-labels'] = '{nope';
      p.metadata!.labels!.app = 'web';
    }), 'alice', null],
  ];
  for (const [name, oldPod, newPod, user, denial] of cases) {
    it(name, () => {
      const v = validateRelabel(oldPod, newPod, user, SICKBAY);
      if (denial === null) assert.deepEqual(v, { allowed: true });
      else {
        assert.equal(v.allowed, false);
        assert.match((v as { message: string }).message, denial);
      }
    });
  }
  it('allows when either object is missing', () => {
    assert.deepEqual(validateRelabel(undefined, quarantined, 'alice', SICKBAY), { allowed: true });
  });
});
