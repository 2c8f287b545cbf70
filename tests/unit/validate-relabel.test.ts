import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { validatePod } from '../../src/webhook/validate-relabel.js';

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

/** Each case: a name, the old pod (undefined on CREATE), the new one, who asks, and the expected denial (null: allowed). */
type Case = [string, V1Pod | undefined, V1Pod, string, RegExp | null];

function runCases(cases: Case[]) {
  for (const [name, oldPod, newPod, user, denial] of cases) {
    it(name, () => {
      const v = validatePod(oldPod, newPod, user, SICKBAY);
      if (denial === null) assert.deepEqual(v, { allowed: true });
      else {
        assert.equal(v.allowed, false);
        assert.match((v as { message: string }).message, denial);
      }
    });
  }
}

describe('relabel guard', () => {
  const cases: Case[] = [
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
  runCases(cases);
  it('allows an UPDATE whose old object is missing when the marks are not touched', () => {
    assert.deepEqual(validatePod(undefined, { metadata: { labels: { app: 'web' } } }, 'alice', SICKBAY), { allowed: true });
    assert.deepEqual(validatePod(quarantined, undefined, 'alice', SICKBAY), { allowed: true });
  });
});

// Forged quarantine: the marks are sickbay's alone, on healthy pods too, on CREATE too.
describe('marks guard', () => {
  const healthy: V1Pod = { metadata: { name: 'web-1', namespace: 'shop', labels: { app: 'web' }, annotations: { note: 'x' } } };
  const cases: Case[] = [
    ['a person creates a pod marked quarantined', undefined, { metadata: { generateName: 'web-', namespace: 'shop', labels: { 'sickbay.io/status': 'quarantined' } } }, 'alice', /only sickbay may set label sickbay\.io\/status \(pod shop\/web-\).*sickbay\.io\/isolate=<reason>/],
    ['a person creates a pod with a controller annotation', undefined, { metadata: { name: 'p', namespace: 'shop', annotations: { 'sickbay.io/original-labels': '{}' } } }, 'alice', /annotation sickbay\.io\/original-labels/],
    ['a person marks a healthy pod quarantined', healthy, { metadata: { ...healthy.metadata, labels: { app: 'web', 'sickbay.io/status': 'quarantined' } } }, 'alice', /only sickbay may set label sickbay\.io\/status \(pod shop\/web-1\)/],
    ['a person adds sickbay.io/registry to a healthy pod', healthy, { metadata: { ...healthy.metadata, annotations: { note: 'x', 'sickbay.io/registry': '{}' } } }, 'bob', /annotation sickbay\.io\/registry/],
    ['a person asks for a quarantine (sickbay.io/isolate)', healthy, { metadata: { ...healthy.metadata, annotations: { note: 'x', 'sickbay.io/isolate': 'slow' } } }, 'alice', null],
    ['a person creates an ordinary pod', undefined, healthy, 'alice', null],
    ['sickbay marks a pod', healthy, { metadata: { ...healthy.metadata, labels: { 'sickbay.io/status': 'quarantined' } } }, SICKBAY, null],
    ['sickbay creates a marked pod', undefined, { metadata: { labels: { 'sickbay.io/status': 'quarantined' } } }, SICKBAY, null],
  ];
  runCases(cases);
});
