// Golden files for the mutating webhook: tests/golden/mutate/<case>.pod.json is the pod
// sent to the webhook, <case>.golden.json the pod the API server would store plus the
// warnings. Cases are found automatically; SICKBAY_UPDATE_GOLDEN=1 rewrites the golden
// files; a golden file without its input fails the run.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import { type AdmissionDeps, reviewMutation } from '../../src/webhook/admission.js';
import { patched, podCreateRequest } from '../support/admission.js';

const dir = fileURLToPath(new URL('../golden/mutate/', import.meta.url));
const update = process.env.SICKBAY_UPDATE_GOLDEN === '1';
export const goldenDeps: AdmissionDeps = {
  injection: { shimImage: 'registry.example/sickbay:test', shimSource: '/opt/sickbay/shim' },
  sickbayUsername: 'system:serviceaccount:sickbay-system:sickbay',
  maxBodyBytes: 1 << 20,
};

// Fields the API server or a run fills in differently each time.
function scrub(pod: V1Pod): V1Pod {
  const p = structuredClone(pod);
  if (p.metadata) {
    delete p.metadata.uid;
    delete p.metadata.creationTimestamp;
    delete p.metadata.resourceVersion;
    delete p.metadata.managedFields;
  }
  return p;
}

const files = readdirSync(dir);
const cases = files.filter((f) => f.endsWith('.pod.json')).map((f) => f.slice(0, -'.pod.json'.length));

describe('mutation golden files', () => {
  it('every golden file has its input (no stale golden files)', () => {
    const stale = files.filter((f) => f.endsWith('.golden.json') && !cases.includes(f.slice(0, -'.golden.json'.length)));
    assert.deepEqual(stale, [], `stale golden files: ${stale.join(', ')}`);
    assert.ok(cases.length >= 10, 'the golden cases are found');
  });

  for (const name of cases) {
    it(name, () => {
      const input = JSON.parse(readFileSync(path.join(dir, `${name}.pod.json`), 'utf8')) as V1Pod;
      const before = structuredClone(input);
      const res = reviewMutation(podCreateRequest(input), goldenDeps);
      assert.deepEqual(input, before, 'the mutation never changes its input');
      assert.equal(res.allowed, true, 'the mutating webhook never denies');
      const actual = { pod: scrub(patched(input, res)), warnings: res.warnings ?? [], patched: !!res.patch };
      const goldenFile = path.join(dir, `${name}.golden.json`);
      if (update || !existsSync(goldenFile)) {
        if (!update) assert.fail(`missing ${goldenFile}; run with SICKBAY_UPDATE_GOLDEN=1 to create it`);
        writeFileSync(goldenFile, `${JSON.stringify(actual, null, 2)}\n`);
      }
      assert.deepEqual(actual, JSON.parse(readFileSync(goldenFile, 'utf8')));

      // f(f(x)) = f(x): the webhook run on its own output changes nothing.
      const again = reviewMutation(podCreateRequest(actual.pod), goldenDeps);
      assert.equal(again.patch, undefined, 'a mutated pod yields no patch');
    });
  }
});

describe('dry run', () => {
  it('the webhook decides the injection, applies none, and says what it would be', () => {
    const input = JSON.parse(readFileSync(path.join(dir, 'no-command-with-entrypoint-annotation.pod.json'), 'utf8')) as V1Pod;
    const res = reviewMutation(podCreateRequest(input), { ...goldenDeps, dryRun: true });
    assert.equal(res.allowed, true);
    assert.equal(res.patch, undefined, 'no patch');
    assert.match((res.warnings ?? []).join('\n'), /sickbay dry run: would inject this pod \(\d+ changes/);
  });
});

describe('the shim image pull secrets', () => {
  it('are added beside the pod’s own, once, so a private registry serves the init container', () => {
    const input = JSON.parse(readFileSync(path.join(dir, 'no-command-with-entrypoint-annotation.pod.json'), 'utf8')) as V1Pod;
    input.spec!.imagePullSecrets = [{ name: 'app-registry' }, { name: 'shim-registry' }];
    const deps = { ...goldenDeps, injection: { ...goldenDeps.injection, pullSecrets: ['shim-registry', 'mirror'] } };
    const res = reviewMutation(podCreateRequest(input), deps);
    const pod = patched(input, res);
    assert.deepEqual(pod.spec!.imagePullSecrets, [{ name: 'app-registry' }, { name: 'shim-registry' }, { name: 'mirror' }]);
    assert.equal(pod.spec!.initContainers![0]!.image, 'registry.example/sickbay:test');
    assert.equal(reviewMutation(podCreateRequest(pod), deps).patch, undefined, 'a mutated pod yields no patch');
  });

  it('a malformed imagePullSecrets is a 400 naming the field, not an exception', () => {
    const input = JSON.parse(readFileSync(path.join(dir, 'no-command-with-entrypoint-annotation.pod.json'), 'utf8')) as V1Pod;
    (input.spec as unknown as Record<string, unknown>).imagePullSecrets = 'registry';
    assert.throws(
      () => reviewMutation(podCreateRequest(input), { ...goldenDeps, injection: { ...goldenDeps.injection, pullSecrets: ['mirror'] } }),
      (err: Error & { status?: number }) => err.status === 400 && /spec\.imagePullSecrets must be a list of objects/.test(err.message),
    );
  });
});
