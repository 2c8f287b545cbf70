import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadYaml } from '@kubernetes/client-node';
import { committedChartCrds } from '../../dev/chart-crds.js';
import { committedChartFiles } from '../../src/core/shim-commands.js';
import { committedWebhookManifests } from '../../src/webhook/webhook-manifests.js';

const root = new URL('../../webhook-config/', import.meta.url);

describe('webhook-config/', () => {
  const expected = committedWebhookManifests();
  it('holds exactly the generated manifests (run `npm run webhook-config` after changing the generator)', () => {
    const onDisk = ['plain', 'cert-manager'].flatMap((d) => readdirSync(new URL(`${d}/`, root)).map((f) => `${d}/${f}`)).sort();
    assert.deepEqual(onDisk, Object.keys(expected).sort());
    for (const [file, text] of Object.entries(expected)) assert.equal(readFileSync(new URL(file, root), 'utf8'), text, `${file} is stale`);
  });

  it('scopes the fail-closed guard to UPDATEs of quarantined pods and never matches system namespaces', () => {
    const v = loadYaml<any>(expected['plain/validating.yaml']!).webhooks[0];
    assert.equal(v.failurePolicy, 'Fail');
    assert.deepEqual(v.rules.map((r: any) => [r.operations, r.resources]), [[['UPDATE'], ['pods', 'pods/status']]]);
    assert.deepEqual(v.objectSelector.matchLabels, { 'sickbay.io/status': 'quarantined' });
    // sickbay's own quarantine patches are not sent to it (the handler would allow them).
    assert.deepEqual(JSON.parse(JSON.stringify(v.matchConditions)), [{ name: 'not-sickbay-itself', expression: "request.userInfo.username != 'system:serviceaccount:sickbay-system:sickbay'" }]);
    // The marks guard: CREATE and UPDATE of pods and their status, called only for writes
    // that touch sickbay's marks, never for sickbay's own.
    const marks = loadYaml<any>(expected['plain/validating.yaml']!).webhooks[1];
    assert.equal(marks.name, 'marks.validate.sickbay.io');
    assert.equal(marks.failurePolicy, 'Fail');
    assert.deepEqual(marks.rules.map((r: any) => [r.operations, r.resources]), [[['CREATE', 'UPDATE'], ['pods', 'pods/status']]]);
    assert.deepEqual(marks.matchConditions.map((c: any) => c.name), ['not-sickbay-itself', 'touches-sickbay-marks']);
    const m = loadYaml<any>(expected['plain/mutating.yaml']!).webhooks[0];
    assert.equal(m.failurePolicy, 'Ignore');
    assert.equal(m.sideEffects, 'None');
    assert.ok(m.timeoutSeconds <= 10);
    for (const w of [m, v]) {
      const notIn = w.namespaceSelector.matchExpressions.find((e: any) => e.key === 'kubernetes.io/metadata.name');
      assert.ok(notIn.values.includes('kube-system') && notIn.values.includes('sickbay-system'));
      assert.deepEqual(w.admissionReviewVersions, ['v1']);
    }
    const cm = loadYaml<any>(expected['cert-manager/mutating.yaml']!);
    assert.equal(cm.metadata.annotations['cert-manager.io/inject-ca-from'], 'sickbay-system/sickbay-serving');
  });

  it('chart/crds/ holds exactly the generated CRDs (run `npm run webhook-config` after changing them)', () => {
    const dir = new URL('../../chart/crds/', import.meta.url);
    const expectedCrds = committedChartCrds();
    assert.deepEqual(readdirSync(dir).sort(), Object.keys(expectedCrds).sort());
    for (const [file, text] of Object.entries(expectedCrds)) assert.equal(readFileSync(new URL(file, dir), 'utf8'), text, `chart/crds/${file} is stale`);
  });

  it('chart/files/ holds the commands sickbay may exec, as the code runs them (run `npm run webhook-config` after changing them)', () => {
    const dir = new URL('../../chart/files/', import.meta.url);
    const expected = committedChartFiles();
    assert.deepEqual(readdirSync(dir).sort(), Object.keys(expected).sort());
    for (const [file, text] of Object.entries(expected)) assert.equal(readFileSync(new URL(file, dir), 'utf8'), text, `chart/files/${file} is stale`);
  });
});
