// Golden files for the mutating webhook (tests/support/golden.ts runs them):
// tests/golden/mutate/<case>.pod.json is the pod sent to the webhook, <case>.golden.json
// the pod the API server would store plus the warnings.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { ANN_FLIGHT_RECORDER, ANN_INJECTED, ENV_JFR_OPTIONS } from '../../src/core/names.js';
import { jfrMaxSizeMiB } from '../../src/webhook/mutate-pod.js';
import { reviewMutation, type ReviewDeps } from '../../src/webhook/review.js';
import { patched, podCreateRequest } from '../support/admission.js';
import { goldenFiles, readGoldenInput } from '../support/golden.js';

export const goldenDeps: ReviewDeps = {
  injection: { shimImage: 'registry.example/sickbay:test', shimSource: '/opt/sickbay/shim' },
  sickbayUsername: 'system:serviceaccount:sickbay-system:sickbay',
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

const mutate = (pod: V1Pod) => {
  const res = reviewMutation(podCreateRequest(pod), goldenDeps);
  assert.equal(res.allowed, true, 'the mutating webhook never denies');
  return { pod: scrub(patched(pod, res)), warnings: res.warnings ?? [], patched: !!res.patch };
};

goldenFiles({
  suite: 'mutate',
  title: 'mutation golden files',
  minCases: 10,
  run: mutate,
  again(out) {
    // The marker alone stops a second injection...
    assert.equal(reviewMutation(podCreateRequest(out.pod), goldenDeps).patch, undefined, 'a marked pod yields no patch');
    // ...and without it the mutation is still a fixed point: it recognises its own work
    // (the shim's init container, volume and wrapped commands) and adds only the marker back.
    const unmarked = structuredClone(out.pod);
    if (unmarked.metadata?.annotations) delete unmarked.metadata.annotations[ANN_INJECTED];
    assert.deepEqual(mutate(unmarked).pod, out.pod, 'the mutation of its own output, marker removed, is that output');
  },
});

const readInput = (name: string) => readGoldenInput('mutate', name);

describe('dry run', () => {
  it('the webhook decides the injection, applies none, and says what it would be', () => {
    const input = readInput('no-command-with-entrypoint-annotation');
    const res = reviewMutation(podCreateRequest(input), { ...goldenDeps, dryRun: true });
    assert.equal(res.allowed, true);
    assert.equal(res.patch, undefined, 'no patch');
    assert.match((res.warnings ?? []).join('\n'), /sickbay dry run: would inject this pod \(\d+ changes/);
  });
});

describe('the shim image pull secrets', () => {
  it('are added beside the pod’s own, once, so a private registry serves the init container', () => {
    const input = readInput('no-command-with-entrypoint-annotation');
    input.spec!.imagePullSecrets = [{ name: 'app-registry' }, { name: 'shim-registry' }];
    const deps = { ...goldenDeps, injection: { ...goldenDeps.injection, pullSecrets: ['shim-registry', 'mirror'] } };
    const res = reviewMutation(podCreateRequest(input), deps);
    const pod = patched(input, res);
    assert.deepEqual(pod.spec!.imagePullSecrets, [{ name: 'app-registry' }, { name: 'shim-registry' }, { name: 'mirror' }]);
    assert.equal(pod.spec!.initContainers![0]!.image, 'registry.example/sickbay:test');
    assert.equal(reviewMutation(podCreateRequest(pod), deps).patch, undefined, 'a mutated pod yields no patch');
  });

  it('a malformed imagePullSecrets is a 400 naming the field, not an exception', () => {
    const input = readInput('no-command-with-entrypoint-annotation');
    (input.spec as unknown as Record<string, unknown>).imagePullSecrets = 'registry';
    assert.throws(
      () => reviewMutation(podCreateRequest(input), { ...goldenDeps, injection: { ...goldenDeps.injection, pullSecrets: ['mirror'] } }),
      (err: Error & { status?: number }) => err.status === 400 && /spec\.imagePullSecrets must be a list of objects/.test(err.message),
    );
  });
});

describe('the flight recorder', () => {
  const pod = (annotations: Record<string, string> = {}): V1Pod => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'shop-1', namespace: 'shop', annotations },
    spec: { containers: [{ name: 'shop', image: 'shop/jvm:1', command: ['java', 'Shop'] }] },
  });
  const jfrEnv = (p: V1Pod, nsAnnotations?: Record<string, string>) => {
    const res = reviewMutation(podCreateRequest(p), { ...goldenDeps, namespaceOf: (name) => (name === 'shop' && nsAnnotations ? { annotations: nsAnnotations } : undefined) });
    const out = patched(p, res);
    return { value: out.spec!.containers[0]!.env?.find((e) => e.name === ENV_JFR_OPTIONS)?.value, warnings: res.warnings ?? [] };
  };

  it('is off unless the pod or its namespace turns it on; the pod says last', () => {
    assert.equal(jfrEnv(pod()).value, undefined);
    assert.match(jfrEnv(pod({ [ANN_FLIGHT_RECORDER]: 'true' })).value ?? '', /-XX:StartFlightRecording=name=sickbay,disk=true,maxage=10m,maxsize=64m/);
    assert.match(jfrEnv(pod(), { [ANN_FLIGHT_RECORDER]: 'true' }).value ?? '', /repository=\/sickbay\/jfr\/shop /);
    assert.equal(jfrEnv(pod({ [ANN_FLIGHT_RECORDER]: 'false' }), { [ANN_FLIGHT_RECORDER]: 'true' }).value, undefined);
    assert.ok(jfrEnv(pod({ [ANN_FLIGHT_RECORDER]: 'true' }), { [ANN_FLIGHT_RECORDER]: 'false' }).value);
  });
  it('a value other than true or false is warned about and leaves it off', () => {
    const { value, warnings } = jfrEnv(pod({ [ANN_FLIGHT_RECORDER]: 'yes' }));
    assert.equal(value, undefined);
    assert.match(warnings.join('\n'), /sickbay\.io\/flight-recorder on the pod must be "true" or "false", got "yes"/);
  });
  it("bounds the recording to a quarter of the container's share of the /sickbay volume", () => {
    assert.equal(jfrMaxSizeMiB(256 * 1024), 64);
    assert.equal(jfrMaxSizeMiB(64 * 1024), 16);
    assert.equal(jfrMaxSizeMiB(32 * 1024), 8);
    assert.equal(jfrMaxSizeMiB(1024), 1);
  });
});
