// Which registrations are a quarantined pod's: by address, and for a pod that shares its
// node's address (hostNetwork), by address and the ports it declares.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTargets, targetKey } from '../../src/registry/zookeeper-registry.js';

describe('registry targets', () => {
  it("a pod with its own address: every registration at that address is the pod's", () => {
    const t = { address: '10.1.2.3' };
    assert.ok(isTargets(t, '10.1.2.3', 20880));
    assert.ok(isTargets(t, '10.1.2.3', undefined));
    assert.ok(!isTargets(t, '10.1.2.4', 20880));
  });

  it('a hostNetwork pod: only the ports it declares, never another process on its node', () => {
    const t = { address: '192.0.2.7', ports: [20880, 8080] };
    assert.ok(isTargets(t, '192.0.2.7', 20880));
    assert.ok(isTargets(t, '192.0.2.7', 8080));
    assert.ok(!isTargets(t, '192.0.2.7', 20881), 'another provider on the same node');
    assert.ok(!isTargets(t, '192.0.2.7', undefined), 'an entry without a port cannot be told apart');
  });

  it('IPv6 hosts in brackets match; keys tell targets with other ports apart', () => {
    assert.ok(isTargets({ address: 'fd00::5' }, '[fd00::5]', 1));
    assert.equal(targetKey({ address: 'a', ports: [2, 1] }), targetKey({ address: 'a', ports: [1, 2] }));
    assert.notEqual(targetKey({ address: 'a', ports: [1] }), targetKey({ address: 'a', ports: [2] }));
    assert.notEqual(targetKey({ address: 'a' }), targetKey({ address: 'a', ports: [1] }));
  });
});
