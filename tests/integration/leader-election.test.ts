// Two `sickbay serve` processes: only the leader acts; kill it during a burst of failures
// and the other takes over, handling every failing pod exactly once. Then leadership is
// flapped by pausing the API server past the renew deadline.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoordinationV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { SIMULATE_READY_ANNOTATION } from '../../src/dev/kwok-config.js';
import { waitFor } from '../../src/util/wait.js';
import { createNamespace, createWebApp, isReady, podsOf, startCluster, type TestCluster } from '../support/cluster.js';
import { request } from '../support/https.js';
import { SICKBAY_NS, type SickbayProcess, spawnSickbay } from '../support/sickbay.js';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const ns = 'shop';

describe('leader election with two replicas', { timeout: 300_000 }, () => {
  let t: TestCluster;
  const replicas: Record<string, SickbayProcess> = {};

  before(async () => {
    t = await startCluster({ nodes: 3 });
    await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
    const env = { SICKBAY_CONTROLLERS: 'true', SICKBAY_LEADER_ELECTION: 'true', SICKBAY_NOT_READY_GRACE: '1s', SICKBAY_LOG_LEVEL: process.env.SICKBAY_TEST_LOG_LEVEL ?? 'info' };
    replicas.a = await spawnSickbay(t, 'replica-a', env);
    replicas.b = await spawnSickbay(t, 'replica-b', env);
  });
  after(async () => {
    for (const r of Object.values(replicas)) r.kill('SIGKILL');
    await Promise.all(Object.values(replicas).map((r) => r.exited));
    await t?.stop();
  });

  const holder = async () => {
    const lease = await t.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'sickbay-controller', namespace: SICKBAY_NS });
    return lease.spec?.holderIdentity ?? '';
  };

  it('one replica leads; after it is killed mid-burst the other takes over and handles each failing pod once', async () => {
    const leader = await waitFor('a leader', async () => (await holder()) || undefined, { timeoutMs: 30_000 });
    assert.ok(['replica-a', 'replica-b'].includes(leader));
    const leaderKey = leader === 'replica-a' ? 'a' : 'b';
    const follower = leaderKey === 'a' ? 'replica-b' : 'replica-a';

    await createWebApp(t, ns, 'burst', 10, { annotations: { 'sickbay.io/max-quarantined': '3' } });
    const pods = await waitFor('10 ready pods', async () => {
      const ps = await podsOf(t.core, ns, 'app=burst');
      return ps.length === 10 && ps.every(isReady) ? ps : undefined;
    });
    const broken = pods.slice(0, 6).map((p) => p.metadata!.name!);
    const breakPod = (name: string) => t.core.patchNamespacedPod({ name, namespace: ns, body: { metadata: { annotations: { [SIMULATE_READY_ANNOTATION]: 'false' } } } }, mergePatch);

    // Two failures handled by the first leader, then it dies without releasing the lease,
    // then four more failures while nobody leads.
    await breakPod(broken[0]!);
    await breakPod(broken[1]!);
    // "Handled" includes the Event each action leaves (a kill between the patch and the
    // Event would lose the Event, not the action).
    await waitFor('the first two handled', async () => {
      const evs = (await t.core.listNamespacedEvent({ namespace: ns })).items;
      return broken.slice(0, 2).every((n) => evs.some((e) => e.involvedObject.name === n && (e.reason === 'Quarantined' || e.reason === 'FailingPodDeleted')));
    });
    const killedAt = Date.now();
    replicas[leaderKey]!.kill('SIGKILL');
    await replicas[leaderKey]!.exited;
    for (const n of broken.slice(2)) await breakPod(n);

    await waitFor('the follower to take the lease', async () => (await holder()) === follower, { timeoutMs: 25_000, intervalMs: 200 });
    const takeover = Date.now() - killedAt;
    assert.ok(takeover <= 20_000, `took over in ${takeover} ms`);

    await waitFor(
      'every broken pod quarantined or deleted',
      async () => {
        const ps = await podsOf(t.core, ns, '');
        return broken.every((n) => {
          const p = ps.find((x) => x.metadata!.name === n);
          return !p || p.metadata?.labels?.['sickbay.io/status'] === 'quarantined';
        });
      },
      { timeoutMs: 30_000 },
    ).catch(async (err) => {
      const ps = await podsOf(t.core, ns, '');
      const state = broken.map((n) => {
        const p = ps.find((x) => x.metadata!.name === n);
        return p ? `${n}: ready=${isReady(p)} labels=${JSON.stringify(p.metadata!.labels)} ann=${JSON.stringify(p.metadata!.annotations)} conds=${JSON.stringify(p.status?.conditions)}` : `${n}: gone`;
      });
      throw new Error(`${(err as Error).message}\n${state.join('\n')}`);
    });
    const quarantined = (await podsOf(t.core, ns, 'sickbay.io/status=quarantined')).map((p) => p.metadata!.name!);
    assert.equal(quarantined.length, 3, 'max-quarantined=3 kept');
    assert.ok(quarantined.every((n) => broken.includes(n)));

    // Exactly once: each broken pod has exactly one Quarantined or FailingPodDeleted Event.
    // Events are written after the action, off the reconcile's path: wait for them, then
    // give a second action's Event time to show before counting.
    const actionEvents = async () => (await t.core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.source?.component === 'sickbay' && e.involvedObject.kind === 'Pod');
    await waitFor('an Event for every broken pod', async () => {
      const evs = await actionEvents();
      return broken.every((n) => evs.some((e) => e.involvedObject.name === n && (e.reason === 'Quarantined' || e.reason === 'FailingPodDeleted')));
    }, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 1000));
    const events = await actionEvents();
    for (const n of broken) {
      const actions = events.filter((e) => e.involvedObject.name === n && (e.reason === 'Quarantined' || e.reason === 'FailingPodDeleted'));
      assert.equal(actions.length, 1, `${n}: ${actions.map((e) => e.reason).join(', ')}`);
    }
    await waitFor('the Deployment back to 10 ready', async () => ((await t.apps.readNamespacedDeployment({ name: 'burst', namespace: ns })).status?.readyReplicas ?? 0) === 10, {
      timeoutMs: 30_000,
    });
  });

  it('a clean shutdown releases the lease at once', async () => {
    const leaderKey = (await holder()) === 'replica-a' ? 'a' : 'b';
    replicas.c = await spawnSickbay(t, 'replica-c', { SICKBAY_CONTROLLERS: 'true', SICKBAY_LEADER_ELECTION: 'true' });
    await new Promise((r) => setTimeout(r, 2000));
    const stoppedAt = Date.now();
    replicas[leaderKey]!.kill('SIGTERM');
    assert.equal(await replicas[leaderKey]!.exited, 0, 'exits cleanly');
    await waitFor('replica-c to lead', async () => (await holder()) === 'replica-c', { timeoutMs: 15_000, intervalMs: 200 });
    assert.ok(Date.now() - stoppedAt < 8_000, `took over ${Date.now() - stoppedAt} ms after a clean stop (no lease-duration wait)`);
  });
  /** 1 while the replica says it leads (its own /metrics, which needs no API server). */
  const leads = async (r: SickbayProcess) => {
    const res = await request(r.port, r.caPem, '/metrics', { method: 'GET' });
    return /^sickbay_leader 1$/m.test(res.body);
  };
  const pauseApiServer = async (ms: number, during?: () => Promise<void>) => {
    const pid = t.cp.pidOf('kube-apiserver')!;
    process.kill(pid, 'SIGSTOP');
    try {
      await Promise.all([new Promise((r) => setTimeout(r, ms)), during?.()]);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  };
  const breakOne = async (app: string) => {
    const [pod] = await waitFor(`a ready ${app} pod`, async () => {
      const ps = (await podsOf(t.core, ns, `app=${app}`)).filter(isReady);
      return ps.length ? ps : undefined;
    });
    const name = pod!.metadata!.name!;
    await t.core.patchNamespacedPod({ name, namespace: ns, body: { metadata: { annotations: { [SIMULATE_READY_ANNOTATION]: 'false' } } } }, mergePatch);
    return name;
  };
  const handled = (name: string) =>
    waitFor(`${name} quarantined`, async () => (await podsOf(t.core, ns, 'sickbay.io/status=quarantined')).some((p) => p.metadata!.name === name), { timeoutMs: 30_000 });

  it('leadership flapped: a renew that hangs past the deadline ends the term; the next term isolates again, and two replicas never lead at once', async () => {
    // replica-c leads alone (the earlier tests stopped a and b).
    const c = replicas.c!;
    await waitFor('replica-c leading', async () => (await holder()) === 'replica-c' && (await leads(c)), { timeoutMs: 15_000 });
    await createWebApp(t, ns, 'flap', 4, { annotations: { 'sickbay.io/max-quarantined': '4' } });

    // 1. The API server paused past the renew deadline (10 s): replica-c's renew hangs,
    // and its term ends at the deadline, while the API server is still paused.
    let stoppedWhilePaused = false;
    await pauseApiServer(12_000, async () => {
      await new Promise((r) => setTimeout(r, 8_000));
      stoppedWhilePaused = await waitFor('replica-c to stop leading', async () => !(await leads(c)), { timeoutMs: 3_500, intervalMs: 100 });
    });
    assert.ok(stoppedWhilePaused, 'the term ended during the pause');
    assert.match(c.output(), /renew deadline; stopping leader work/);
    // The same replica wins the lease again: a new term, whose controllers work.
    await waitFor('replica-c leading again', async () => (await holder()) === 'replica-c' && (await leads(c)), { timeoutMs: 20_000 });
    await handled(await breakOne('flap'));

    // 2. Two candidates, the API server paused past the lease duration: whoever leads
    // after, the two never say they lead at the same moment, and isolation works.
    replicas.d = await spawnSickbay(t, 'replica-d', { SICKBAY_CONTROLLERS: 'true', SICKBAY_LEADER_ELECTION: 'true', SICKBAY_NOT_READY_GRACE: '1s' });
    const d = replicas.d;
    const both: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [lc, ld] = await Promise.all([leads(c).catch(() => false), leads(d).catch(() => false)]);
        if (lc && ld) both.push(Date.now());
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await new Promise((r) => setTimeout(r, 3_000));
    await pauseApiServer(17_000);
    const leader = await waitFor('a leader after the pause', async () => {
      const h = await holder();
      const r = h === 'replica-c' ? c : h === 'replica-d' ? d : undefined;
      return r && (await leads(r)) ? r : undefined;
    }, { timeoutMs: 30_000 });
    await handled(await breakOne('flap'));
    await new Promise((r) => setTimeout(r, 2_000));
    sampling = false;
    await sampler;
    assert.deepEqual(both, [], 'both replicas said they led at these moments');
    assert.ok(leader === c || leader === d);
  });
});
