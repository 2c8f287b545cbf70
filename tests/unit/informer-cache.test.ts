// The informer's indexes and the cache's lookups, filled by writeThrough: no server needed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeConfig, type V1Pod, type V1ReplicaSet } from '@kubernetes/client-node';
import { ClusterCache } from '../../src/kube/cluster-cache.js';
import { Index, Informer, type KubeObject, nextPageLimit, PAGE_BYTES } from '../../src/kube/informer.js';
import { silentLogger } from '../../src/core/log.js';

describe('Informer indexes', () => {
  const pod = (name: string, rv: string, ns: string, owner?: string): KubeObject & { owner?: string } => ({ metadata: { name, namespace: ns, resourceVersion: rv }, owner });
  it('follow every change to the cache, including writeThrough', () => {
    const inf = new Informer<KubeObject & { owner?: string }>(new KubeConfig(), { resource: 'pods', path: '/api/v1/pods', log: silentLogger() });
    inf.writeThrough(pod('a', '1', 'shop', 'rs-1'));
    inf.addIndex('owner', (p) => p.owner); // added late: indexes what is already cached
    inf.writeThrough(pod('b', '1', 'shop', 'rs-1'));
    inf.writeThrough(pod('c', '1', 'shop'));
    assert.deepEqual(inf.byIndex('owner', 'rs-1').map((p) => p.metadata?.name).sort(), ['a', 'b']);
    inf.writeThrough(pod('a', '2', 'shop', 'rs-2')); // released and adopted elsewhere
    assert.deepEqual(inf.byIndex('owner', 'rs-1').map((p) => p.metadata?.name), ['b']);
    assert.deepEqual(inf.byIndex('owner', 'rs-2').map((p) => p.metadata?.name), ['a']);
    inf.writeThrough(pod('a', '1', 'shop', 'rs-1')); // older than the cached version: ignored
    assert.deepEqual(inf.byIndex('owner', 'rs-2').map((p) => p.metadata?.name), ['a']);
    assert.deepEqual(inf.byIndex('owner', 'nobody'), []);
    assert.throws(() => inf.byIndex('nope', 'x'), /no index nope/);
  });
  it('Index drops a key from its old value', () => {
    const i = new Index();
    i.set('k', 'v1');
    i.set('k', 'v2');
    i.set('j', 'v2');
    assert.deepEqual([...i.keys('v1')], []);
    assert.deepEqual([...i.keys('v2')].sort(), ['j', 'k']);
    i.set('k', undefined);
    assert.deepEqual([...i.keys('v2')], ['j']);
  });
});

describe('ClusterCache lookups', () => {
  const rs = (name: string, deployment?: string): V1ReplicaSet => ({
    metadata: { name, namespace: 'shop', resourceVersion: '1', ownerReferences: deployment ? [{ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment, uid: 'd', controller: true }] : [] },
  });
  const pod = (name: string, rv: string, o: { rs?: string; sts?: string; quarantinedFor?: string; ready?: boolean } = {}): V1Pod => ({
    metadata: {
      name,
      namespace: 'shop',
      resourceVersion: rv,
      uid: `uid-${name}`,
      labels: o.quarantinedFor ? { 'sickbay.io/status': 'quarantined' } : { app: 'web' },
      annotations: o.quarantinedFor ? { 'sickbay.io/owner': o.quarantinedFor } : {},
      ownerReferences: o.rs ? [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: o.rs, uid: 'r', controller: true }] : o.sts ? [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: o.sts, uid: 's', controller: true }] : undefined,
    },
    status: { conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  });
  it('never counts the system namespaces or its own as opted in, even when labelled', () => {
    const c = new ClusterCache(new KubeConfig(), { resyncMs: 0, ownNamespace: 'sickbay-system', log: silentLogger() });
    for (const name of ['kube-system', 'kube-public', 'kube-node-lease', 'sickbay-system', 'shop']) {
      c.namespaces.writeThrough({ metadata: { name, labels: { 'sickbay.io/injection': 'enabled' } } });
    }
    assert.deepEqual(['kube-system', 'kube-public', 'kube-node-lease', 'sickbay-system', 'shop'].filter((n) => c.isOptedIn(n)), ['shop']);
  });
  it("finds a workload's pods across its ReplicaSets, and a namespace's quarantined pods", () => {
    const c = new ClusterCache(new KubeConfig(), { resyncMs: 0, log: silentLogger() });
    c.replicaSets.writeThrough(rs('web-1', 'web'));
    c.replicaSets.writeThrough(rs('web-2', 'web')); // mid-rollout
    c.replicaSets.writeThrough(rs('bare'));
    c.pods.writeThrough(pod('w1', '1', { rs: 'web-1' }));
    c.pods.writeThrough(pod('w2', '1', { rs: 'web-2' }));
    c.pods.writeThrough(pod('b1', '1', { rs: 'bare' }));
    c.pods.writeThrough(pod('db-0', '1', { sts: 'db' }));
    c.pods.writeThrough(pod('lone', '1'));
    const names = (ps: Array<{ metadata?: { name?: string } }>) => ps.map((p) => p.metadata?.name).sort();
    assert.deepEqual(names(c.inServicePodsOf('shop', { kind: 'Deployment', name: 'web' })), ['w1', 'w2']);
    assert.deepEqual(names(c.inServicePodsOf('shop', { kind: 'ReplicaSet', name: 'bare' })), ['b1']);
    assert.deepEqual(names(c.inServicePodsOf('shop', { kind: 'StatefulSet', name: 'db' })), ['db-0']);
    assert.deepEqual(names(c.inServicePodsOf('shop', { kind: 'Pod', name: 'lone' })), ['lone']);
    assert.deepEqual(names(c.inServicePodsOf('other', { kind: 'Deployment', name: 'web' })), []);
    // Quarantined (the ReplicaSet has released it): out of service, in the namespace's quarantine.
    c.pods.writeThrough(pod('w1', '2', { quarantinedFor: 'Deployment/web' }));
    assert.deepEqual(names(c.inServicePodsOf('shop', { kind: 'Deployment', name: 'web' })), ['w2']);
    assert.deepEqual(names(c.quarantinedIn('shop')), ['w1']);
    assert.deepEqual(names(c.podsIn('shop')), ['b1', 'db-0', 'lone', 'w1', 'w2']);
  });
});

describe('list pages follow their bytes', () => {
  it('doubles a light page up to the most allowed', () => {
    assert.equal(nextPageLimit(10, 80_000, 100), 20);
    assert.equal(nextPageLimit(80, 640_000, 100), 100);
  });
  it('shrinks a heavy page to what fits PAGE_BYTES, one object at least', () => {
    // Ten Deployments of a megabyte: the next page asks for four.
    assert.equal(nextPageLimit(10, 10 * 2 ** 20, 100), 4);
    // One object past the budget: still one at a time, never zero.
    assert.equal(nextPageLimit(1, PAGE_BYTES * 1.5, 100), 1);
  });
});
