import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CheckTracker, conditionsCheck, ProcessWatch } from '../../src/agent/checks.js';
import { parseStat, readProcessTable } from '../../src/agent/proc.js';
import { parseProcessSpecs } from '../../src/core/agent-settings.js';
import { ConfigError, readConfig } from '../../src/core/config.js';
import { healthCondition, nodeProblemCondition } from '../../src/core/nodehealth.js';
import { agentClusterRules } from '../../src/core/rbac.js';
import { runtimeLayout } from '../../src/agent/runtime-layout.js';
import { type ProcRoot, procRoot } from '../support/proc-root.js';

const roots: ProcRoot[] = [];
after(() => roots.forEach((r) => r.dispose()));
const newRoot = () => {
  const p = procRoot();
  roots.push(p);
  return p;
};

describe('the process table', () => {
  it('reads names with spaces and parentheses, and the state after the last parenthesis', () => {
    assert.deepEqual(parseStat('42 (my (odd) name) Z 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0'), { pid: 42, comm: 'my (odd) name', state: 'Z', startTime: '777' });
    assert.equal(parseStat('garbage'), undefined);
    assert.equal(parseStat('(x) S'), undefined);
    assert.equal(parseStat('12 (x) '), undefined);
  });

  it('skips entries that vanished, cannot be read or are not processes, and ignores non-pid names', () => {
    const p = newRoot();
    p.add(10, 'containerd');
    p.raw('11', undefined); // exited between readdir and read: no stat
    p.raw('12', 'half a line (');
    mkdirSync(path.join(p.root, '13', 'stat'), { recursive: true }); // stat is a directory: EISDIR
    p.raw('self', '1 (init) S');
    p.raw('sys', undefined);
    const table = readProcessTable(p.root);
    assert.deepEqual(table.processes.map((x) => x.comm), ['containerd']);
    assert.equal(table.skipped, 3);
  });

  it('fails with the reason when the root itself cannot be read', () => {
    const watch = new ProcessWatch('/nonexistent/proc', parseProcessSpecs('kubelet'));
    const r = watch.check();
    assert.equal(r.ok, false);
    assert.match(r.message, /cannot read \/nonexistent\/proc/);
  });
});

describe('watched processes', () => {
  it('names the missing and the zombie ones, and recovers when they run again', () => {
    const p = newRoot();
    p.add(1, 'systemd');
    p.add(100, 'containerd');
    p.add(101, 'kubelet');
    const watch = new ProcessWatch(p.root, parseProcessSpecs('containerd,kubelet'));
    assert.deepEqual(watch.check(), { ok: true, message: 'running: containerd, kubelet' });
    p.remove(100);
    p.add(102, 'kubelet', { state: 'Z' }); // a zombie next to the live one does not matter
    assert.deepEqual(watch.check(), { ok: false, message: 'containerd is not running' });
    p.remove(101);
    assert.deepEqual(watch.check(), { ok: false, message: 'containerd is not running; kubelet is a zombie (pid 102)' });
    p.add(103, 'containerd');
    p.add(104, 'kubelet');
    assert.equal(watch.check().ok, true);
  });

  it("counts a runtime process only in the host's PID namespace: a container cannot fake containerd", () => {
    const p = newRoot();
    p.add(101, 'kubelet');
    p.add(4000, 'containerd', { nspid: [4000, 1] }); // a container's process that calls itself containerd
    const watch = new ProcessWatch(p.root, parseProcessSpecs('containerd,kubelet'));
    assert.deepEqual(watch.check(), { ok: false, message: 'containerd is not running (1 process(es) of that name run in a container, which does not count)' });
    p.add(100, 'containerd');
    assert.deepEqual(watch.check(), { ok: true, message: 'running: containerd, kubelet' });
  });

  it("@pod processes may run in a container (Calico's), alternatives accept either runtime", () => {
    const p = newRoot();
    p.add(300, 'docker-containe', { argv: ['/usr/bin/docker-containerd'] }); // the kernel keeps 15 characters
    p.add(400, 'calico-node', { argv: ['calico-node', '-felix'], nspid: [400, 7] });
    p.add(401, 'bird', { nspid: [401, 9] });
    const specs = parseProcessSpecs('dockerd?,containerd|docker-containerd,felix@pod?,bird@pod?');
    assert.deepEqual(
      specs.map((x) => [x.name, x.names, x.scope, x.optional]),
      [['dockerd', ['dockerd'], 'host', true], ['containerd|docker-containerd', ['containerd', 'docker-containerd'], 'host', false], ['felix', ['felix'], 'pod', true], ['bird', ['bird'], 'pod', true]],
    );
    assert.deepEqual(new ProcessWatch(p.root, specs).check(), { ok: true, message: 'running: containerd|docker-containerd, felix, bird' });
    assert.deepEqual(new ProcessWatch(p.root, parseProcessSpecs('felix?')).check().ok, true, 'felix in a container, host scope: not seen, and optional');
  });

  it('rejects a malformed process spec', () => {
    for (const bad of ['containerd@host', 'a||b', 'con tainerd', 'x?@pod']) assert.throws(() => parseProcessSpecs(bad), /not a process spec/, bad);
  });

  it('an optional process is checked once it has been seen', () => {
    const p = newRoot();
    p.add(100, 'containerd');
    const watch = new ProcessWatch(p.root, parseProcessSpecs('dockerd?,containerd'));
    assert.deepEqual(watch.check(), { ok: true, message: 'running: containerd' });
    p.add(200, 'dockerd');
    assert.equal(watch.check().ok, true);
    p.remove(200);
    assert.deepEqual(watch.check(), { ok: false, message: 'dockerd is not running' });
  });

  it('matches by argv[0] for names longer than the kernel keeps, and calico-node style -felix', () => {
    const p = newRoot();
    p.add(300, 'container-runti', { argv: ['/usr/bin/container-runtime-daemon', '--flag'] });
    p.add(301, 'calico-node', { argv: ['calico-node', '-felix'] });
    const watch = new ProcessWatch(p.root, parseProcessSpecs('container-runtime-daemon,felix'));
    assert.deepEqual(watch.check(), { ok: true, message: 'running: container-runtime-daemon, felix' });
    p.remove(301);
    p.add(301, 'calico-node', { argv: ['calico-node', '-confd'], start: 2000 }); // same pid, another process
    assert.deepEqual(watch.check(), { ok: false, message: 'felix is not running' });
  });

  it('rejects process names that are not names', () => {
    assert.throws(() => parseProcessSpecs('kubelet,rm -rf'), /not a process spec/);
    assert.deepEqual(parseProcessSpecs(' a , b? ,'), [
      { name: 'a', names: ['a'], optional: false, scope: 'host' },
      { name: 'b', names: ['b'], optional: true, scope: 'host' },
    ]);
  });
});

describe('a check over time', () => {
  it('fails after 3 failures in a row and recovers after one success', () => {
    const t = new CheckTracker('processes', 3, new Date(0));
    assert.equal(t.record({ ok: false, message: 'x' }, new Date(1000)), false);
    assert.equal(t.record({ ok: false, message: 'x' }, new Date(2000)), false);
    assert.equal(t.state.ok, true);
    assert.match(t.state.message, /2 of 3 failures/);
    assert.equal(t.record({ ok: true, message: 'fine' }, new Date(3000)), false);
    assert.equal(t.state.consecutiveFailures, 0);
    for (const s of [4, 5]) t.record({ ok: false, message: 'x' }, new Date(s * 1000));
    assert.equal(t.record({ ok: false, message: 'kubelet is not running' }, new Date(6000)), true);
    assert.deepEqual({ ok: t.state.ok, message: t.state.message, at: t.state.lastTransitionTime.getTime() }, { ok: false, message: 'kubelet is not running', at: 6000 });
    assert.equal(t.record({ ok: true, message: 'fine' }, new Date(7000)), true);
    assert.equal(t.state.ok, true);
  });
});

describe('node conditions', () => {
  const now = Date.parse('2026-12-07T10:00:00Z');
  const node = (conds: Record<string, string>, since = now - 60_000) => ({ status: { conditions: Object.entries(conds).map(([type, status]) => ({ type, status, lastTransitionTime: new Date(since) })) } });
  it('pressure alone is the kubelet\'s to remedy: reported, never a failure by default (issue 26, item 2)', () => {
    assert.equal(conditionsCheck(node({ Ready: 'True', MemoryPressure: 'False', DiskPressure: 'False' }), now).ok, true);
    const p = conditionsCheck(node({ Ready: 'True', DiskPressure: 'True', PIDPressure: 'True' }, now - 86_400_000), now);
    assert.equal(p.ok, true, 'a day of DiskPressure is still not a node fault by default');
    assert.match(p.message, /^DiskPressure; PIDPressure: the kubelet's evictions handle pressure; not a node fault$/);
    assert.equal(conditionsCheck(undefined).ok, false);
  });
  it('with SICKBAY_AGENT_PRESSURE_AFTER, fails once a pressure condition has lasted that long', () => {
    const tenMinutes = 600_000;
    assert.equal(conditionsCheck(node({ DiskPressure: 'True' }, now - 599_000), now, tenMinutes).ok, true, 'not yet');
    assert.deepEqual(conditionsCheck(node({ DiskPressure: 'True', MemoryPressure: 'False' }, now - 600_000), now, tenMinutes), { ok: false, message: "DiskPressure for over 600s, past the kubelet's evictions" });
  });
});

describe('the processes a node runs, from its Node object (SICKBAY_AGENT_PROCESSES=auto)', () => {
  // Each node shape with the processes it really runs, in a /proc written as the kernel does.
  const shapes: { name: string; info: { containerRuntimeVersion: string; kubeletVersion: string }; processes: [string, string[]?][]; message: RegExp }[] = [
    { name: 'containerd', info: { containerRuntimeVersion: 'containerd://1.7.13', kubeletVersion: 'v1.29.3' }, processes: [['containerd'], ['kubelet']], message: /running: containerd\|docker-containerd, kubelet\|kubelite \(containerd node\)/ },
    { name: 'CRI-O (OpenShift)', info: { containerRuntimeVersion: 'cri-o://1.29.1-5.rhaos4.16', kubeletVersion: 'v1.29.5+d3a5f6b' }, processes: [['crio'], ['kubelet'], ['conmon']], message: /running: crio, kubelet\|kubelite \(CRI-O node\)/ },
    { name: 'Docker with cri-dockerd', info: { containerRuntimeVersion: 'docker://24.0.7', kubeletVersion: 'v1.28.2' }, processes: [['dockerd'], ['containerd'], ['cri-dockerd'], ['kubelet']], message: /running: dockerd, containerd\|docker-containerd, cri-dockerd, kubelet\|kubelite \(Docker node\)/ },
    { name: 'k3s (one process for the kubelet, its own containerd)', info: { containerRuntimeVersion: 'containerd://1.7.11-k3s2', kubeletVersion: 'v1.29.3+k3s1' }, processes: [['k3s-server', ['/usr/local/bin/k3s', 'server']], ['containerd']], message: /running: containerd\|docker-containerd, k3s-server\|k3s-agent\|k3s \(containerd \(k3s\) node\)/ },
    { name: 'k3s agent', info: { containerRuntimeVersion: 'containerd://1.7.11-k3s2', kubeletVersion: 'v1.29.3+k3s1' }, processes: [['k3s-agent'], ['containerd']], message: /k3s-server\|k3s-agent\|k3s/ },
    { name: 'MicroK8s (kubelite)', info: { containerRuntimeVersion: 'containerd://1.6.28', kubeletVersion: 'v1.29.4' }, processes: [['containerd'], ['kubelite']], message: /running: containerd\|docker-containerd, kubelet\|kubelite/ },
  ];
  for (const shape of shapes) {
    it(`a ${shape.name} node is healthy with the defaults, and fails when its runtime is gone`, () => {
      const layout = runtimeLayout(shape.info);
      assert.ok(layout.known);
      const proc = procRoot();
      try {
        shape.processes.forEach(([comm, argv], i) => proc.add(100 + i, comm, { argv }));
        const watch = new ProcessWatch(proc.root, layout.specs);
        const ok = watch.check();
        assert.equal(ok.ok, true, ok.message);
        assert.match(`${ok.message} (${layout.description})`, shape.message);
        proc.remove(100); // the runtime (or, on k3s, its kubelet process)
        assert.equal(watch.check().ok, false);
      } finally {
        proc.dispose();
      }
    });
  }

  it('the old default would have failed k3s and CRI-O nodes (the harm this prevents)', () => {
    const old = parseProcessSpecs('dockerd?,containerd|docker-containerd,kubelet,felix@pod?,bird@pod?,confd@pod?');
    const proc = procRoot();
    try {
      proc.add(100, 'k3s-server');
      proc.add(101, 'containerd');
      assert.match(new ProcessWatch(proc.root, old).check().message, /kubelet is not running/);
    } finally {
      proc.dispose();
    }
  });

  it('an unknown runtime is reported and not checked: never a reason to isolate', () => {
    for (const info of [{ containerRuntimeVersion: 'rkt://1.30.0', kubeletVersion: 'v1.29.0' }, { containerRuntimeVersion: '', kubeletVersion: '' }, undefined]) {
      const layout = runtimeLayout(info);
      assert.equal(layout.known, false);
      assert.match(layout.description, /is not one sickbay knows; its processes are not checked \(set SICKBAY_AGENT_PROCESSES/);
    }
  });
});

describe("a NodeHealth's Healthy condition", () => {
  it('says the verdict, why, and since when', () => {
    const since = new Date('2026-11-30T10:00:00Z');
    const checks = [
      { name: 'kubelet', ok: true, message: 'ok' },
      { name: 'processes', ok: false, message: 'crio is not running' },
    ];
    assert.deepEqual(healthCondition(false, since, checks), { type: 'Healthy', status: 'False', reason: 'ChecksFailing', message: 'processes: crio is not running', lastTransitionTime: '2026-11-30T10:00:00.000Z' });
    assert.deepEqual(healthCondition(true, since, [checks[0]!]), { type: 'Healthy', status: 'True', reason: 'ChecksPassing', message: 'passing: kubelet', lastTransitionTime: '2026-11-30T10:00:00.000Z' });
  });
});

describe('node configuration', () => {
  it('has the documented defaults', () => {
    const c = readConfig({});
    assert.equal(c.node.lockDurationMs, 45 * 60_000);
    assert.equal(c.node.heartbeatIntervalMs, 10_000);
    assert.equal(c.node.missedHeartbeats, 3);
    assert.equal(c.node.isolationBudget, '10%');
    assert.equal(c.node.recoveryAfterMs, 45 * 60_000, 'on by default, as long as the protection lock');
    assert.equal(c.agent.pressureAfterMs, 0, 'pressure alone never fails the conditions check');
    assert.equal(c.agent.checkIntervalMs, 1000);
    assert.equal(c.agent.failureThreshold, 3);
    assert.deepEqual(c.agent.checks, ['kubelet', 'conditions', 'network', 'processes']);
    assert.equal(c.agent.processes, 'auto', 'the processes follow from each node');
    const spec = readConfig({ SICKBAY_AGENT_PROCESSES: 'crio,kubelet' }).agent.processes;
    assert.deepEqual(spec !== 'auto' && spec.map((p) => p.name), ['crio', 'kubelet']);
  });

  it('refuses a lock outside 30-60 minutes, unknown checks, bad targets and budgets, naming the variable', () => {
    assert.throws(() => readConfig({ SICKBAY_NODE_LOCK_DURATION: '10m' }), (e: Error) => e instanceof ConfigError && /SICKBAY_NODE_LOCK_DURATION="10m": must be between 30m and 60m/.test(e.message));
    assert.equal(readConfig({ SICKBAY_NODE_LOCK_DURATION: '1h' }).node.lockDurationMs, 3_600_000);
    assert.throws(() => readConfig({ SICKBAY_AGENT_CHECKS: 'kubelet,disk' }), /unknown check "disk"/);
    assert.throws(() => readConfig({ SICKBAY_AGENT_NETWORK_TARGETS: '10.0.0.1' }), /SICKBAY_AGENT_NETWORK_TARGETS="10.0.0.1": "10.0.0.1" is not host:port/);
    assert.throws(() => readConfig({ SICKBAY_NODE_ISOLATION_BUDGET: 'ten' }), /SICKBAY_NODE_ISOLATION_BUDGET/);
    assert.throws(() => readConfig({ SICKBAY_AGENT_PROCESSES: 'a b' }), /SICKBAY_AGENT_PROCESSES/);
    assert.equal(readConfig({ SICKBAY_DRY_RUN: 'true' }).node.dryRun, true);
  });
});

describe("the agent's own Node condition", () => {
  it('is True while a check fails, as Node Problem Detector writes its conditions', () => {
    const since = new Date('2026-11-30T10:00:00Z');
    const now = new Date('2026-11-30T10:05:00Z');
    const checks = [{ name: 'kubelet', ok: false, message: 'HTTP 500' }];
    assert.deepEqual(nodeProblemCondition('SickbayNodeProblem', false, since, checks, now), {
      type: 'SickbayNodeProblem',
      status: 'True',
      reason: 'ChecksFailing',
      message: 'sickbay agent: kubelet: HTTP 500',
      lastHeartbeatTime: '2026-11-30T10:05:00.000Z',
      lastTransitionTime: '2026-11-30T10:00:00.000Z',
    });
    assert.equal(nodeProblemCondition('SickbayNodeProblem', true, since, [], now).status, 'False');
  });

  it('needs nodes/status only when configured, and a valid condition type', () => {
    assert.ok(!JSON.stringify(agentClusterRules({ nodeCondition: false, checkpoints: false })).includes('nodes/status'));
    assert.ok(JSON.stringify(agentClusterRules({ nodeCondition: true, checkpoints: false })).includes('nodes/status'));
    assert.ok(!JSON.stringify(agentClusterRules({ nodeCondition: true, checkpoints: false })).includes('nodes/checkpoint'));
    assert.ok(JSON.stringify(agentClusterRules({ nodeCondition: false, checkpoints: true })).includes('nodes/checkpoint'));
    assert.equal(readConfig({}).agent.nodeCondition, undefined);
    assert.equal(readConfig({ SICKBAY_AGENT_NODE_CONDITION: 'SickbayNodeProblem' }).agent.nodeCondition, 'SickbayNodeProblem');
    assert.throws(() => readConfig({ SICKBAY_AGENT_NODE_CONDITION: 'sickbay problem' }), /SICKBAY_AGENT_NODE_CONDITION="sickbay problem": a condition type/);
  });
});
