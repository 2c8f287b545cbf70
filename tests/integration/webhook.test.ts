// Issue 3 on the real API server: the webhooks registered with the generated CA bundle.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { waitFor } from '../../src/util/wait.js';
import { createNamespace, createWebApp, podsOf, rawApiRequest, startCluster, type TestCluster } from '../support/cluster.js';
import { type RunningSickbay, startSickbay, waitForInjection } from '../support/sickbay.js';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

describe('admission webhooks on the real API server', { timeout: 300_000 }, () => {
  let t: TestCluster;
  let sickbay: RunningSickbay;

  before(async () => {
    t = await startCluster({ nodes: 2 });
    sickbay = await startSickbay(t);
    await createNamespace(t.core, 'shop', { 'sickbay.io/injection': 'enabled' });
    await createNamespace(t.core, 'plain');
    await waitForInjection(t.core, 'shop');
  });
  after(async () => {
    await sickbay?.stop();
    await t?.stop();
  });

  it('pods of a Deployment in an opted-in namespace come back with the shim and the probe', async () => {
    await createWebApp(t, 'shop', 'web', 2);
    const pods = await waitFor('2 pods', async () => {
      const ps = await podsOf(t.core, 'shop', 'app=web');
      return ps.length === 2 ? ps : undefined;
    });
    for (const p of pods) {
      const c = p.spec!.containers[0]!;
      assert.deepEqual(c.command, ['/sickbay/bin/supervise', '--name', 'web', '--', '/app/server', '--port=8080']);
      assert.deepEqual(c.readinessProbe?.exec?.command, ['/sickbay/bin/probe', 'web']);
      assert.equal(p.spec!.initContainers?.[0]?.name, 'sickbay-shim-install');
      assert.ok(p.spec!.volumes?.some((v) => v.name === 'sickbay-shim' && v.emptyDir));
      assert.equal(p.metadata!.annotations?.['sickbay.io/injected'], 'true');
    }
  });

  it('a namespace without the label and an opted-out pod are untouched', async () => {
    const body: V1Pod = { metadata: { name: 'plain-pod' }, spec: { containers: [{ name: 'c', image: 'x', command: ['/run'] }] } };
    const plain = await t.core.createNamespacedPod({ namespace: 'plain', body });
    assert.deepEqual(plain.spec!.containers[0]!.command, ['/run']);
    assert.equal(plain.spec!.initContainers, undefined);
    const optedOut = await t.core.createNamespacedPod({ namespace: 'shop', body: { ...body, metadata: { name: 'opted-out', labels: { 'sickbay.io/inject': 'false' } } } });
    assert.deepEqual(optedOut.spec!.containers[0]!.command, ['/run']);
  });

  it('a container without a command is left alone and the API server relays the warning', async () => {
    const res = await rawApiRequest(t.kc, 'POST', '/api/v1/namespaces/shop/pods', {
      metadata: { name: 'no-command' },
      spec: { containers: [{ name: 'nginx', image: 'nginx' }] },
    });
    assert.equal(res.status, 201);
    const pod = JSON.parse(res.body) as V1Pod;
    const warnings = [res.headers.warning].flat().join('\n');
    assert.equal(pod.spec!.containers[0]!.command, undefined);
    assert.match(warnings, /has no command/);
  });

  describe('the relabel guard', () => {
    const ns = 'shop';
    let alice: CoreV1Api;
    let sickbayCore: CoreV1Api;
    const quarantinedPod = 'broken-0';

    before(async () => {
      const rbac = t.kc.makeApiClient(RbacAuthorizationV1Api);
      await rbac.createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: 'alice-edit' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
          subjects: [{ kind: 'User', name: 'alice', apiGroup: 'rbac.authorization.k8s.io' }],
        },
      });
      alice = t.cp.clientCertKubeConfig('alice', ['developers']).makeApiClient(CoreV1Api);
      sickbayCore = sickbay.kc.makeApiClient(CoreV1Api);
      // What the controller leaves behind: a pod, then sickbay's own identity marks it
      // (nobody else may set the marks, not even an admin).
      await t.core.createNamespacedPod({
        namespace: ns,
        body: { metadata: { name: quarantinedPod, labels: { tier: 'web' } }, spec: { containers: [{ name: 'web', image: 'x', command: ['/run'] }] } },
      });
      await sickbayCore.patchNamespacedPod(
        {
          name: quarantinedPod,
          namespace: ns,
          body: {
            metadata: {
              labels: { 'sickbay.io/status': 'quarantined' },
              annotations: { 'sickbay.io/original-labels': JSON.stringify({ app: 'web', 'pod-template-hash': 'abc' }), 'sickbay.io/reason': 'NotReady' },
            },
          },
        },
        mergePatch,
      );
    });

    /** A refusal by one of sickbay's validating webhooks, with words matching `pattern`. */
    const deniedBy = (webhooks: Array<'pods' | 'marks'>, pattern: RegExp) => (err: { code?: number; body?: string }) => {
      assert.equal(err.code, 403, `expected a webhook denial, got ${err.code}: ${err.body}`);
      assert.ok(webhooks.some((w) => String(err.body).includes(`admission webhook \\"${w}.validate.sickbay.io\\" denied the request`)), String(err.body));
      assert.match(String(err.body), pattern);
      return true;
    };
    // Both validating webhooks refuse a forged mark, and the API server calls them in
    // parallel and reports the first refusal it gets: either may be the one that answers
    // (a CI run saw pods.validate answer where marks.validate had every time before).
    const deniedByMarks = (pattern: RegExp) => deniedBy(['marks', 'pods'], pattern);
    const denied = (pattern: RegExp) => deniedBy(['pods'], pattern);

    it('refuses a forged quarantine: a pod created with the mark, a healthy pod marked, its status subresource too', async () => {
      await assert.rejects(
        alice.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'forged', labels: { 'sickbay.io/status': 'quarantined' } }, spec: { containers: [{ name: 'web', image: 'x', command: ['/run'] }] } } }),
        deniedByMarks(/only sickbay may set label sickbay\.io\/status \(pod shop\/forged\)/),
      );
      await t.core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'healthy', labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'x', command: ['/run'] }] } } });
      await assert.rejects(
        alice.patchNamespacedPod({ name: 'healthy', namespace: ns, body: { metadata: { annotations: { 'sickbay.io/reason': 'forged' } } } }, mergePatch),
        deniedByMarks(/annotation sickbay\.io\/reason/),
      );
      // An admin is not sickbay either, and the status subresource is no way around it.
      await assert.rejects(
        t.core.patchNamespacedPodStatus({ name: 'healthy', namespace: ns, body: { metadata: { labels: { 'sickbay.io/status': 'quarantined' } } } }, mergePatch),
        deniedByMarks(/only sickbay may set label sickbay\.io\/status/),
      );
      // Asking for a quarantine is what people and monitors do: allowed.
      const asked = await alice.patchNamespacedPod({ name: 'healthy', namespace: ns, body: { metadata: { annotations: { 'sickbay.io/isolate': 'slow' } } } }, mergePatch);
      assert.equal(asked.metadata!.annotations!['sickbay.io/isolate'], 'slow');
    });

    it('refuses a person removing sickbay.io/status, with the webhook message', async () => {
      await assert.rejects(
        alice.patchNamespacedPod({ name: quarantinedPod, namespace: ns, body: { metadata: { labels: { 'sickbay.io/status': null } } } }, mergePatch),
        // A mark of a quarantined pod: both guards refuse it, in the same words; the API
        // server calls them side by side and reports whichever answered.
        deniedBy(['pods', 'marks'], /only sickbay may change label sickbay\.io\/status.*sickbay release shop\/broken-0/),
      );
    });

    it('refuses a person adding the selector labels back, naming the keys', async () => {
      await assert.rejects(
        alice.patchNamespacedPod({ name: quarantinedPod, namespace: ns, body: { metadata: { labels: { app: 'web' } } } }, mergePatch),
        denied(/adding back app=web/),
      );
    });

    it('refuses the selector labels put back through the status subresource too, even by an admin (issue 31)', async () => {
      await assert.rejects(
        t.core.patchNamespacedPodStatus({ name: quarantinedPod, namespace: ns, body: { metadata: { labels: { app: 'web', 'pod-template-hash': 'abc' } } } }, mergePatch),
        denied(/adding back app=web/),
      );
      const p = await t.core.readNamespacedPod({ name: quarantinedPod, namespace: ns });
      assert.equal(p.metadata!.labels!.app, undefined, 'the ReplicaSet cannot adopt it back');
    });

    it('lets a person add an unrelated label', async () => {
      const p = await alice.patchNamespacedPod({ name: quarantinedPod, namespace: ns, body: { metadata: { labels: { 'debugging-by': 'alice' } } } }, mergePatch);
      assert.equal(p.metadata!.labels!['debugging-by'], 'alice');
    });

    it("lets sickbay's own identity change the marks", async () => {
      const p = await sickbayCore.patchNamespacedPod({ name: quarantinedPod, namespace: ns, body: { metadata: { labels: { 'sickbay.io/status': null, app: 'web' } } } }, mergePatch);
      assert.equal(p.metadata!.labels!['sickbay.io/status'], undefined);
      assert.equal(p.metadata!.labels!.app, 'web');
    });
  });
});
