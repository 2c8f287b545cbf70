// Issue 5 end to end: ZooKeeper deregistration (a real server) and JVM diagnostics run by
// exec through the API server into kwok pods (the command runs on this machine).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { sleep, waitFor } from '../../src/util/wait.js';
import { scenario, secs } from '../support/chaos.js';
import { createNamespace, createWebApp, eventsOf, isReady, podsOf, startCluster, type TestCluster } from '../support/cluster.js';
import { startStuckJvm } from '../support/jvm.js';
import { request } from '../support/https.js';
import { installShim } from '../support/shim.js';
import { type RunningSickbay, startSickbay } from '../support/sickbay.js';
import { exists, registerAppInstance, registerDubboProvider, ZooKeeperRelay, ZooKeeperServer, zkSession } from '../support/zookeeper.js';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const ns = 'shop';
const hangScript = fileURLToPath(new URL('../fixtures/hang.sh', import.meta.url));

describe('after quarantine: registry deregistration and diagnostics', { timeout: 600_000 }, () => {
  let t: TestCluster;
  let sickbay: RunningSickbay;
  let zk: ZooKeeperServer;
  let jvm: Awaited<ReturnType<typeof startStuckJvm>>;
  const shimDir = mkdtempSync(path.join(tmpdir(), 'sickbay-shimdir-'));
  const sessions: Array<{ close(): void }> = [];

  before(async () => {
    // What the init container does in a real pod: the shim into the pod's /sickbay.
    installShim(shimDir);
    zk = await ZooKeeperServer.start();
    jvm = await startStuckJvm();
    t = await startCluster({ nodes: 2, simulation: { exec: { workDir: shimDir, env: { SICKBAY_DIR: shimDir, SICKBAY_DIAG_MATCH: 'StuckApp' } } } });
    sickbay = await startSickbay(t, sickbayEnv());
    await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
  });
  after(async () => {
    for (const s of sessions) s.close();
    await sickbay?.stop();
    await t?.stop();
    await zk?.stop();
    jvm?.stop();
    rmSync(shimDir, { recursive: true, force: true });
  });

  const sickbayEnv = () => ({
    SICKBAY_CONTROLLERS: 'true',
    SICKBAY_NOT_READY_GRACE: '500ms',
    SICKBAY_REGISTRIES: JSON.stringify([{ name: 'zk', connect: zk.connect }]),
    SICKBAY_DIAGNOSTICS_TIMEOUT: '3s',
  });
  const readyPods = (app: string, n: number) =>
    waitFor(`${n} ready ${app} pods`, async () => {
      const ps = await podsOf(t.core, ns, `app=${app}`);
      return ps.length === n && ps.every(isReady) ? ps : undefined;
    });
  const isolate = (name: string) => t.core.patchNamespacedPod({ name, namespace: ns, body: { metadata: { annotations: { 'sickbay.io/isolate': 'test' } } } }, mergePatch);
  const annotation = async (name: string, key: string) => {
    const raw = (await t.core.readNamespacedPod({ name, namespace: ns })).metadata?.annotations?.[key];
    return raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
  };
  const session = async () => {
    const s = await zkSession(zk.connect);
    sessions.push(s);
    return s;
  };

  it('removes exactly the quarantined pod entries, within 1 s, and removes a re-registration again', async () => {
    await createWebApp(t, ns, 'orders', 2);
    const [victim, other] = (await readyPods('orders', 2)) as [V1Pod, V1Pod];
    const ip = victim.status!.podIP!;
    const otherIp = other.status!.podIP!;
    // Separate sessions, as separate provider processes would have.
    const a = await registerDubboProvider(await session(), 'com.shop.OrderService', ip, 20880);
    const b = await registerDubboProvider(await session(), 'com.shop.PaymentService', ip, 20881);
    const c = await registerDubboProvider(await session(), 'com.shop.OrderService', otherIp, 20880);
    const appMine = await registerAppInstance(await session(), 'orders', 'i-1', ip);
    const appOther = await registerAppInstance(await session(), 'orders', 'i-2', otherIp);
    const probe = await session();

    await isolate(victim.metadata!.name!);
    const quarantinedAt = await waitFor('quarantined', async () => {
      const p = await t.core.readNamespacedPod({ name: victim.metadata!.name!, namespace: ns });
      return p.metadata?.labels?.['sickbay.io/status'] === 'quarantined' ? Date.parse(p.metadata.annotations!['sickbay.io/quarantined-at']!) : undefined;
    }, { intervalMs: 20 });
    await waitFor('the 3 entries of the pod removed', async () => !(await exists(probe, a)) && !(await exists(probe, b)) && !(await exists(probe, appMine)), {
      timeoutMs: 5_000,
      intervalMs: 20,
    });
    const took = Date.now() - quarantinedAt;
    assert.ok(took <= 1_000, `removed ${took} ms after the quarantine`);
    // What sickbay removed is recorded: exactly the pod's own entries.
    const record = await waitFor('the registry annotation', () => annotation(victim.metadata!.name!, 'sickbay.io/registry'));
    assert.equal(record.address, ip);
    assert.deepEqual((record.removed as string[]).map((e) => e.replace(/^zk:/, '')).sort(), [a, b, appMine].sort());
    assert.notEqual(ip, otherIp, 'the two pods have addresses of their own');
    assert.ok(await exists(probe, c), `another pod's provider stays (sickbay removed only ${JSON.stringify(record.removed)})`);
    assert.ok(await exists(probe, appOther), "another pod's instance stays");

    // The app still holds a session and registers again: removed again.
    const again = await registerDubboProvider(await session(), 'com.shop.OrderService', ip, 20880);
    await waitFor('the re-registration removed', async () => !(await exists(probe, again)), { timeoutMs: 5_000, intervalMs: 20 });
    assert.ok(await exists(probe, c));
  });

  scenario('restart with a quarantined hostNetwork pod', {
    title: "a hostNetwork pod: removes only the registrations on the ports it declares, not its node's other providers, before and after sickbay restarts",
    load: "a quarantined hostNetwork pod (the node's address) and another provider of the same node on another port, in ZooKeeper",
    fault: 'sickbay restarted (a new leader runs the post-quarantine step again from its slim cache)',
    outcome: "the pod's own entries removed, before and after; the node's other provider never touched; a re-registration after the restart removed again",
  }, async (fig) => {
    const labels = { app: 'gateway' };
    await t.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'gateway' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { hostNetwork: true, containers: [{ name: 'gw', image: 'x', command: ['/gw'], ports: [{ containerPort: 20880 }] }] } },
        },
      },
    });
    const [victim] = (await readyPods('gateway', 2)) as [V1Pod];
    const ip = victim.status!.podIP!; // the node's address
    const mine = await registerDubboProvider(await session(), 'com.shop.GatewayService', ip, 20880);
    const neighbour = await registerDubboProvider(await session(), 'com.shop.StockService', ip, 20990);
    const mineApp = await registerAppInstance(await session(), 'gateway', 'g-1', ip, 20880);
    const neighbourApp = await registerAppInstance(await session(), 'stock', 's-1', ip, 20990);
    const probe = await session();
    await isolate(victim.metadata!.name!);
    await waitFor("the pod's own entries removed", async () => !(await exists(probe, mine)) && !(await exists(probe, mineApp)), { timeoutMs: 10_000, intervalMs: 50 });
    assert.ok(await exists(probe, neighbour), "another process's provider on the same node stays");
    assert.ok(await exists(probe, neighbourApp), "another process's instance on the same node stays");
    const record = await waitFor('the registry annotation', () => annotation(victim.metadata!.name!, 'sickbay.io/registry'));
    assert.deepEqual(record.ports, [20880]);

    // A new leader (a restart, a fail-over) runs the step again from its cache, whose
    // pods are slim: it must still know the pod is hostNetwork and which ports are its own.
    await sickbay.stop();
    sickbay = await startSickbay(t, sickbayEnv());
    const again = await waitFor('the step run again by the new sickbay', async () => ((r) => (r && r.at !== record.at ? r : undefined))(await annotation(victim.metadata!.name!, 'sickbay.io/registry')), { timeoutMs: 15_000 });
    assert.deepEqual(again.ports, [20880], 'the re-run knows the ports the pod declares');
    await new Promise((r) => setTimeout(r, 1_000));
    assert.ok(await exists(probe, neighbour), "after the re-run, another process's provider on the same node stays");
    assert.ok(await exists(probe, neighbourApp), "after the re-run, another process's instance on the same node stays");
    // The pod registers itself again: the new sickbay removes it, and only it.
    const back = await registerDubboProvider(await session(), 'com.shop.GatewayService', ip, 20880);
    const backAt = Date.now();
    await waitFor('the re-registration removed by the restarted sickbay', async () => !(await exists(probe, back)), { timeoutMs: 15_000, intervalMs: 50 });
    fig('re-registration removed after the restart', `${Date.now() - backAt} ms`);
    assert.ok(await exists(probe, neighbour) && (await exists(probe, neighbourApp)), "the node's other provider still there");
    fig("the node's other provider", 'untouched');
  });

  scenario('ZooKeeper session expired', {
    title: "after sickbay's ZooKeeper session expires, its registry step watches again: a re-registration of the quarantined pod is removed",
    load: 'a quarantined pod, deregistered and watched by the sickbay process',
    fault: 'ZooKeeper unreachable from sickbay past the session timeout (its connections cut at a relay), so ZooKeeper expires the session and its watches',
    outcome: 'the expiry seen; the watch re-armed on a new session; the re-registration removed',
  }, async (fig) => {
    const relay = await ZooKeeperRelay.start(zk.connect);
    await sickbay.stop();
    sickbay = await startSickbay(t, { ...sickbayEnv(), SICKBAY_REGISTRIES: JSON.stringify([{ name: 'zk', connect: relay.connect }]) });
    try {
      await createWebApp(t, ns, 'expiry', 2);
      const [victim] = (await readyPods('expiry', 2)) as [V1Pod];
      const name = victim.metadata!.name!;
      const ip = victim.status!.podIP!;
      const first = await registerDubboProvider(await session(), 'com.shop.ExpiryService', ip, 20880);
      await isolate(name);
      const watching = await waitFor('deregistered and watching', async () => {
        const r = await annotation(name, 'sickbay.io/registry');
        return r?.status === 'watching' ? r : undefined;
      }, { timeoutMs: 20_000 });
      assert.ok((watching.removed as string[]).some((e) => e.endsWith(first)));
      const expiries = async () => (await sickbay.handle.metrics.registrySessionExpiries.get()).values.reduce((n, v) => n + v.value, 0);
      // Unreachable for longer than the session timeout (10 s): ZooKeeper expires the session.
      const cutAt = Date.now();
      relay.cut();
      await sleep(16_000);
      relay.restore();
      await waitFor('sickbay to see its session expired', async () => (await expiries()) >= 1, { timeoutMs: 30_000 });
      fig('unreachable for', secs(16_000));
      fig('expiry seen after', secs(Date.now() - cutAt));
      // The app registers again from its own session: sickbay removes it again, on its new session.
      const again = await registerDubboProvider(await session(), 'com.shop.ExpiryService', ip, 20880);
      const registeredAt = Date.now();
      const probe = await session();
      await waitFor('the re-registration removed', async () => !(await exists(probe, again)), { timeoutMs: 20_000, intervalMs: 50 });
      fig('re-registration removed after', `${Date.now() - registeredAt} ms`);
      await waitFor('a Reregistered Event', async () => (await eventsOf(t, ns, { name })).some((e) => e.reason === 'Reregistered'));
    } finally {
      await sickbay.stop();
      sickbay = await startSickbay(t, sickbayEnv());
      await relay.stop();
    }
  });

  scenario('ZooKeeper down, then back', {
    title: 'keeps the quarantine while ZooKeeper is down and removes the entries once it is back; the annotation tells the story',
    load: "a quarantined pod's provider entry",
    fault: 'ZooKeeper killed (SIGKILL) through the quarantine, then started again on its port and data',
    outcome: 'quarantined at once; the entry removed once ZooKeeper is reachable',
  }, async (fig) => {
    await createWebApp(t, ns, 'payments', 2);
    const [victim] = (await readyPods('payments', 2)) as [V1Pod];
    const name = victim.metadata!.name!;
    const entry = await registerDubboProvider(await session(), 'com.shop.LedgerService', victim.status!.podIP!, 20880);
    await zk.kill();
    const isolatedAt = Date.now();
    await isolate(name);
    await waitFor('quarantined although ZooKeeper is down', async () => (await t.core.readNamespacedPod({ name, namespace: ns })).metadata?.labels?.['sickbay.io/status'] === 'quarantined');
    fig('quarantined after', secs(Date.now() - isolatedAt));
    const retrying = await waitFor('the annotation to say retrying', async () => {
      const r = await annotation(name, 'sickbay.io/registry');
      return r?.status === 'retrying' ? r : undefined;
    }, { timeoutMs: 20_000 });
    fig('first attempt failed after', secs(Date.now() - isolatedAt));
    assert.match(String(retrying.error), /ZooKeeper/);
    await waitFor('a DeregistrationFailed Event', async () => (await eventsOf(t, ns, { name })).some((e) => e.reason === 'DeregistrationFailed'));

    await zk.revive();
    const resumedAt = Date.now();
    const probe = await session();
    await waitFor('the entry removed after ZooKeeper came back', async () => !(await exists(probe, entry)), { timeoutMs: 40_000, intervalMs: 200 });
    fig('entry removed after ZooKeeper was back', secs(Date.now() - resumedAt));
    const done = await waitFor('the annotation to say watching', async () => {
      const r = await annotation(name, 'sickbay.io/registry');
      return r?.status === 'watching' ? r : undefined;
    });
    assert.ok((done.removed as string[]).some((e) => e.endsWith(entry)));
    assert.ok(Number(done.attempts) >= 2);
  });

  scenario('ZooKeeper frozen, then back', {
    title: 'keeps running when a hung ZooKeeper comes back and answers the connections sickbay gave up on; the entry is removed then',
    load: "a quarantined pod's provider entry (persistent: only sickbay can remove it); sickbay retrying its deregistration",
    fault: 'ZooKeeper frozen (SIGSTOP: connections accepted, none answered) until sickbay had failed 3 attempts, then resumed (SIGCONT)',
    outcome: 'sickbay keeps running and serving; the entry removed once ZooKeeper answers',
  }, async (fig) => {
    // node-zookeeper-client threw from its socket listener on the answers a resumed server
    // sends to connections the client had closed: an uncaught exception, in sickbay's process.
    await createWebApp(t, ns, 'ledger', 2);
    const [victim] = (await readyPods('ledger', 2)) as [V1Pod];
    const name = victim.metadata!.name!;
    const entry = await registerDubboProvider(await session(), 'com.shop.AuditService', victim.status!.podIP!, 20881, { persistent: true });
    // sickbay runs in this process: what would have killed it is an uncaught exception here.
    const uncaught: string[] = [];
    const onUncaught = (err: unknown) => void uncaught.push(String(err));
    process.on('uncaughtException', onUncaught);
    zk.freeze();
    const frozenAt = Date.now();
    try {
      await isolate(name);
      await waitFor('3 failed attempts', async () => {
        const r = await annotation(name, 'sickbay.io/registry');
        return r?.status === 'retrying' && Number(r.attempts) >= 3;
      }, { timeoutMs: 90_000, intervalMs: 250 });
    } finally {
      zk.thaw();
    }
    fig('frozen for', secs(Date.now() - frozenAt));
    const thawedAt = Date.now();
    const probe = await session();
    await waitFor('the entry removed after ZooKeeper answered again', async () => !(await exists(probe, entry)), { timeoutMs: 60_000, intervalMs: 200 });
    fig('entry removed after ZooKeeper was back', secs(Date.now() - thawedAt));
    const done = await waitFor('the annotation to say watching', async () => {
      const r = await annotation(name, 'sickbay.io/registry');
      return r?.status === 'watching' ? r : undefined;
    });
    assert.ok((done.removed as string[]).some((e) => e.endsWith(entry)), JSON.stringify(done));
    await sleep(1_000); // the resumed server's last answers
    process.off('uncaughtException', onUncaught);
    fig('uncaught exceptions', uncaught.length);
    assert.deepEqual(uncaught, [], "an uncaught exception: sickbay's process would have died");
  });

  it('captures diagnostics of a real JVM through exec into the kwok pod and reports success on the pod', async () => {
    await createWebApp(t, ns, 'jvm', 2);
    const [victim] = (await readyPods('jvm', 2)) as [V1Pod];
    const name = victim.metadata!.name!;
    await isolate(name);
    const diag = await waitFor('the diagnostics annotation', () => annotation(name, 'sickbay.io/diagnostics'), { timeoutMs: 30_000 });
    assert.equal(diag.status, 'ok', JSON.stringify(diag));
    assert.equal(diag.pid, jvm.pid);
    assert.equal(diag.threadDump, 'jcmd');
    assert.match(readFileSync(path.join(String(diag.dir), 'threads.txt'), 'utf8'), /sickbay-stuck-worker/);
    assert.ok(String(diag.dir).startsWith(`${shimDir}/diag/`), 'under the pod\'s /sickbay/diag');
    await waitFor('a DiagnosticsCaptured Event', async () => (await eventsOf(t, ns, { name })).some((e) => e.reason === 'DiagnosticsCaptured'));
  });

  it('cuts off a script that hangs, reports it, and still processes the next pod', async () => {
    await createWebApp(t, ns, 'stuck-script', 2, { podAnnotations: { 'sickbay.io/diagnostics-script': hangScript } });
    await createWebApp(t, ns, 'next', 2);
    const [hanging] = (await readyPods('stuck-script', 2)) as [V1Pod];
    const [next] = (await readyPods('next', 2)) as [V1Pod];
    await isolate(hanging.metadata!.name!);
    await isolate(next.metadata!.name!);
    const cut = await waitFor('the hang reported', () => annotation(hanging.metadata!.name!, 'sickbay.io/diagnostics'), { timeoutMs: 30_000 });
    assert.equal(cut.status, 'timeout');
    assert.equal(cut.script, hangScript);
    const ok = await waitFor('the next pod diagnosed', () => annotation(next.metadata!.name!, 'sickbay.io/diagnostics'), { timeoutMs: 30_000 });
    assert.equal(ok.status, 'ok');
  });

  scenario("DNS failing for ZooKeeper's hostname", {
    title: "keeps the quarantine and keeps serving while ZooKeeper's hostname does not resolve, and removes the entries once it does",
    load: "a quarantined pod's provider entry; sickbay configured with ZooKeeper by hostname",
    fault: "the hostname does not resolve (ENOTFOUND), then resolves again (an /etc/hosts entry added)",
    outcome: 'quarantined at once; sickbay keeps running and serving; the entry removed once the name resolves',
  }, async (fig) => {
    const host = 'sickbay-zk-dns-test.internal';
    const hostsLine = `127.0.0.1 ${host} # sickbay test, removed by it`;
    const removeEntry = () => writeFileSync('/etc/hosts', readFileSync('/etc/hosts', 'utf8').split('\n').filter((l) => l !== hostsLine).join('\n'));
    removeEntry();
    const port = zk.connect.split(':').pop();
    await sickbay.stop();
    sickbay = await startSickbay(t, { ...sickbayEnv(), SICKBAY_REGISTRIES: JSON.stringify([{ name: 'zk', connect: `${host}:${port}` }]) });
    try {
      await createWebApp(t, ns, 'dns-app', 2);
      const [victim] = (await readyPods('dns-app', 2)) as [V1Pod];
      const name = victim.metadata!.name!;
      const entry = await registerDubboProvider(await session(), 'com.shop.DnsService', victim.status!.podIP!, 20880);
      const isolatedAt = Date.now();
      await isolate(name);
      await waitFor('quarantined although the name does not resolve', async () => (await t.core.readNamespacedPod({ name, namespace: ns })).metadata?.labels?.['sickbay.io/status'] === 'quarantined');
      fig('quarantined after', secs(Date.now() - isolatedAt));
      const retrying = await waitFor('the annotation to say retrying', async () => {
        const r = await annotation(name, 'sickbay.io/registry');
        return r?.status === 'retrying' ? r : undefined;
      }, { timeoutMs: 30_000 });
      fig('first attempt failed after', secs(Date.now() - isolatedAt));
      fig('the error said', String(retrying.error).split('; ').pop()!);
      assert.match(String(retrying.error), /sickbay-zk-dns-test.internal \((ENOTFOUND|EAI_AGAIN)\) does not resolve/);
      // Still serving meanwhile: the webhook and the probes answer.
      const ready = await request(sickbay.handle.port, readFileSync(`${sickbay.certDir}/ca.crt`, 'utf8'), '/readyz', { method: 'GET' });
      assert.equal(ready.status, 200, ready.body);
      writeFileSync('/etc/hosts', `${readFileSync('/etc/hosts', 'utf8').replace(/\n?$/, '\n')}${hostsLine}\n`);
      const resolvedAt = Date.now();
      const probe = await session();
      await waitFor('the entry removed after the name resolved', async () => !(await exists(probe, entry)), { timeoutMs: 60_000, intervalMs: 200 });
      fig('entry removed after the name resolved', secs(Date.now() - resolvedAt));
      await waitFor('the annotation to say watching', async () => (await annotation(name, 'sickbay.io/registry'))?.status === 'watching');
      fig('sickbay exits', 0);
    } finally {
      removeEntry();
    }
  });
});
