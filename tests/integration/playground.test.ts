// `npm start` from the outside: it reaches "ready", following its printed steps shows a
// quarantine, and Ctrl-C leaves nothing running; with --real-node, sickbay runs from its
// image through the chart and a real JVM container is quarantined and dumped.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { parseDuration } from '../../src/core/config.js';
import { REAL_NODE } from '../../dev/real-node.js';
import { execInPod } from '../../src/kube/exec.js';
import { collect } from '../../src/cli/collect.js';
import { inspectCheckpoint } from '../../src/checkpoint/inspect.js';
import { waitFor } from '../../src/util/wait.js';

const root = new URL('../../', import.meta.url).pathname;

function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(text)) found.push(`${pid}: ${cmd.slice(0, 120)}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** `npm start [args]` in a folder of its own, in a process group Ctrl-C reaches whole. */
function startPlayground(devDir: string, args: string[] = []) {
  const child = spawn('npm', ['start', '--silent', ...(args.length ? ['--', ...args] : [])], { cwd: root, env: { ...process.env, SICKBAY_DEV_DIR: devDir }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    output: () => out,
    /** Resolves at "ready"; fails at once, with what it said, if the playground exits first. */
    ready: async () => {
      let gone = false;
      void exited.then(() => (gone = true));
      await waitFor('sickbay playground ready', () => out.includes('sickbay playground ready') || gone, { timeoutMs: 300_000, intervalMs: 250 }).catch(() => undefined);
      if (!out.includes('sickbay playground ready')) {
        assert.fail(`the playground ${gone ? 'exited' : 'was not ready after 300 s'}; it said:\n${out.split('\n').filter((l) => !l.startsWith('{')).slice(-40).join('\n')}`);
      }
    },
    /** Ctrl-C, then: the playground says it stopped, and no process mentions its folder. */
    async interrupt() {
      if (child.exitCode !== null || child.signalCode !== null) {
        assert.fail(`the playground had exited already (${child.exitCode ?? child.signalCode}); it said:\n${out.split('\n').filter((l) => !l.startsWith('{')).slice(-60).join('\n')}`);
      }
      process.kill(-child.pid!, 'SIGINT');
      // npm itself exits on the signal; the playground finishes its cleanup and says so.
      await exited;
      await waitFor('the playground to finish stopping', () => out.includes('nothing left running'), { timeoutMs: 60_000 }).catch(() => assert.fail(out.slice(-3000)));
      await waitFor('no process mentioning the playground folder', () => processesMentioning(devDir).length === 0, { timeoutMs: 10_000 }).catch(() => {
        assert.deepEqual(processesMentioning(devDir), []);
      });
    },
  };
}

describe('npm start (the playground)', { timeout: 600_000 }, () => {
  const devDir = mkdtempSync(path.join(tmpdir(), 'sickbay-playground-'));
  const realDir = mkdtempSync(path.join(tmpdir(), 'sickbay-playground-real-'));
  after(() => {
    rmSync(devDir, { recursive: true, force: true });
    rmSync(realDir, { recursive: true, force: true });
  });

  it('reaches ready, quarantines a pod made to fail, and leaves nothing behind on Ctrl-C', async () => {
    const playground = startPlayground(devDir);
    const out = () => playground.output();
    try {
      await playground.ready();
      assert.match(out(), /Three things to try/);
      assert.match(out(), new RegExp(`export KUBECONFIG=${devDir}/kubeconfig`));
      // sickbay's own lines only, none of them a warning about the playground's own set-up.
      assert.match(out(), /control plane ready with 3 kwok node\(s\) in [\d.]+ s \(logs in \S+\/logs\)/);
      assert.doesNotMatch(out(), /"level":"(warn|error)"/);

      // Step 1, as printed: annotate one hello pod sickbay.dev/simulate-ready=false.
      const kc = new KubeConfig();
      kc.loadFromFile(path.join(devDir, 'kubeconfig'));
      const core = kc.makeApiClient(CoreV1Api);
      const [pod] = (await core.listNamespacedPod({ namespace: 'demo', labelSelector: 'app=hello' })).items;
      const name = pod!.metadata!.name!;
      assert.equal(pod!.spec!.containers[0]!.command?.[0], '/sickbay/bin/supervise', 'the sample pods are injected');
      await core.patchNamespacedPod(
        { name, namespace: 'demo', body: { metadata: { annotations: { 'sickbay.dev/simulate-ready': 'false' } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      // Step 2: quarantined after the default 10 s grace period.
      await waitFor(
        'the pod quarantined',
        async () => (await core.readNamespacedPod({ name, namespace: 'demo' })).metadata?.labels?.['sickbay.io/status'] === 'quarantined',
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      // Step 3: a replacement; the Deployment back to 3 ready.
      await waitFor('3 ready hello pods again', async () => {
        const pods = (await core.listNamespacedPod({ namespace: 'demo', labelSelector: 'app=hello' })).items;
        return pods.length === 3 && pods.every((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      });
      // The printed node step: the node's "containerd" gone, the node isolated.
      const rm = /rm -r (\S+\/nodes\/(\S+?)\/proc\/100)/.exec(out());
      assert.ok(rm, 'step 4 names a fake process to remove');
      rmSync(rm[1]!, { recursive: true });
      await waitFor(`${rm[2]} tainted`, async () => !!(await core.readNode({ name: rm[2]! })).spec?.taints?.some((t) => t.key === 'sickbay.io/isolated'), { timeoutMs: 20_000, intervalMs: 250 });
      // Its agent keeps reporting from the isolated node (its pod tolerates the taint, as
      // the DaemonSet's do; evicted, its pod-bound token would stop working).
      const tainted = Date.now();
      const health = async () => (await kc.makeApiClient(CustomObjectsApi).getClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths', name: rm[2]! })) as { status?: { heartbeatTime?: string } };
      await waitFor(`a heartbeat from ${rm[2]} after its isolation`, async () => Date.parse((await health()).status?.heartbeatTime ?? '') > tainted + 1000, { timeoutMs: 30_000, intervalMs: 500 });
      assert.doesNotMatch(out(), /heartbeat failed/);
    } finally {
      await playground.interrupt();
    }
  });

  it('--real-node: sickbay from its image through the chart, a real JVM quarantined and dumped, nothing left on Ctrl-C', async () => {
    const playground = startPlayground(realDir, ['--real-node']);
    try {
      await playground.ready();
      assert.match(playground.output(), /and sickbay-real-node \(a real kubelet and containerd on this machine\)/);
      const kc = new KubeConfig();
      kc.loadFromFile(path.join(realDir, 'kubeconfig'));
      const core = kc.makeApiClient(CoreV1Api);
      const serve = (await core.listNamespacedPod({ namespace: 'sickbay-system', labelSelector: 'app.kubernetes.io/component=serve' })).items;
      assert.equal(serve[0]?.spec?.nodeName, REAL_NODE.name, 'sickbay serve runs in a pod on the real node');
      // Step 4, as printed: deadlock a shop pod.
      const [pod] = (await core.listNamespacedPod({ namespace: 'demo', labelSelector: 'app=shop' })).items;
      const name = pod!.metadata!.name!;
      const exec = (command: string[]) => execInPod(kc, { namespace: 'demo', pod: name, container: 'app' }, command, 20_000);
      assert.match((await exec(['wget', '-q', '-O', '-', '--post-data', '', 'http://127.0.0.1:8080/deadlock'])).stdout, /deadlocked/);
      await waitFor(
        'the deadlocked pod quarantined and dumped',
        async () => {
          const p = await core.readNamespacedPod({ name, namespace: 'demo' });
          return p.metadata?.labels?.['sickbay.io/status'] === 'quarantined' && /"status":"ok"/.test(p.metadata?.annotations?.['sickbay.io/diagnostics'] ?? '');
        },
        // A bound on the outcome, not a speed target: the readiness probe's failures, the
        // grace and the dump take a while on a busy machine (one full run took over 90 s).
        { timeoutMs: 180_000, intervalMs: 500 },
      ).catch(async (err) => {
        const p = await core.readNamespacedPod({ name, namespace: 'demo' }).catch(() => undefined);
        const events = (await core.listNamespacedEvent({ namespace: 'demo', fieldSelector: `involvedObject.name=${name}` }).catch(() => undefined))?.items.map((e) => `${e.reason}: ${e.message}`);
        assert.fail(`${(err as Error).message}: labels ${JSON.stringify(p?.metadata?.labels)} annotations ${JSON.stringify(p?.metadata?.annotations)} ready ${JSON.stringify(p?.status?.conditions)} events ${JSON.stringify(events)}\n${playground.output().slice(-3000)}`);
      });
      // shop asks for checkpoints (issue 30): the chart's agent took one through the real
      // kubelet (its own token, nodes/checkpoint) before the dumps, and the archive is on the node.
      const result = JSON.parse((await core.readNamespacedPod({ name, namespace: 'demo' })).metadata?.annotations?.['sickbay.io/checkpoint-result'] ?? '{}') as { status?: string; containers?: Array<{ archive?: string; bytes?: number }> };
      assert.equal(result.status, 'ok', JSON.stringify(result));
      assert.ok(result.containers?.[0]?.archive && existsSync(result.containers[0].archive), JSON.stringify(result));
      assert.ok((result.containers[0].bytes ?? 0) > 1 << 20, 'a JVM\'s memory is megabytes');
      // sickbay collect takes it off the node through the agent there (the admin's kubeconfig may exec into it).
      const bundleDir = mkdtempSync(path.join(tmpdir(), 'sickbay-collect-'));
      try {
        const bundleFile = path.join(bundleDir, 'scene.tar.gz');
        const collected = await collect(kc, { namespace: 'demo', pod: name, file: bundleFile, maxBytes: 2 ** 30, checkpointsFrom: 'sickbay-system' });
        assert.deepEqual(collected.missing.filter((m) => m.path.startsWith('checkpoints')), []);
        const listing = execFileSync('tar', ['-tzvf', bundleFile], { encoding: 'utf8' });
        const entry = new RegExp(`\\s${result.containers[0].bytes}\\s.*/checkpoints/app\\.tar$`, 'm');
        assert.match(listing, entry, 'the archive, whole, in the bundle');
        execFileSync('tar', ['-xzf', bundleFile, '-C', bundleDir, '--wildcards', '*/checkpoints/app.tar']);
        const copy = execFileSync('sh', ['-c', 'ls "$0"/*/checkpoints/app.tar', bundleDir], { encoding: 'utf8' }).trim();
        const summary = await inspectCheckpoint(copy);
        assert.ok(summary.processes.some((p) => p.name === 'java'), JSON.stringify(summary.processes.map((p) => p.name)));
      } finally {
        rmSync(bundleDir, { recursive: true, force: true });
      }
      // Read as a user would, with kubectl exec; an exec that fails on a busy machine
      // (its stream closed without a status) is tried again: the file is the outcome.
      let threads: Awaited<ReturnType<typeof exec>> | undefined;
      await waitFor('the thread dump read from the container', async () => /Found one Java-level deadlock/.test((threads = await exec(['sh', '-c', 'cat /sickbay/diag/*/threads.txt'])).stdout), { timeoutMs: 30_000, intervalMs: 2000 })
        .catch(() => assert.fail(`no deadlock in the thread dump: ${JSON.stringify({ error: threads?.error, stderr: threads?.stderr, stdout: threads?.stdout.slice(0, 500) })}`));

      // Step 5, as printed: crash another shop pod for good. One scene is kept already and
      // this failure is its own (the first one's replacement is Ready): it is evicted and
      // replaced within the grace period and 5 s, and shop is back to 2/2 (issue 25).
      const apps = kc.makeApiClient(AppsV1Api);
      const serveEnv = (await apps.readNamespacedDeployment({ name: 'sickbay', namespace: 'sickbay-system' })).spec!.template.spec!.containers[0]!.env ?? [];
      const graceMs = parseDuration(serveEnv.find((e) => e.name === 'SICKBAY_NOT_READY_GRACE')?.value ?? '10s') * 1000;
      const inService = () => core.listNamespacedPod({ namespace: 'demo', labelSelector: 'app=shop' }).then((r) => r.items.filter((p) => !p.metadata?.deletionTimestamp));
      await waitFor('shop at 2 ready pods again after step 4', async () => ((await apps.readNamespacedDeployment({ name: 'shop', namespace: 'demo' })).status?.readyReplicas ?? 0) === 2, { timeoutMs: 180_000, intervalMs: 1000 });
      const second = (await inService()).find((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))!;
      await execInPod(kc, { namespace: 'demo', pod: second.metadata!.name!, container: 'app' }, ['wget', '-q', '-O', '-', '--post-data', '', 'http://127.0.0.1:8080/crash'], 20_000);
      const notReadyAt = await waitFor('the crashed pod NotReady (its supervisor gave up)', async () => ((p) => (p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'False') ? Date.now() : undefined))(await core.readNamespacedPod({ name: second.metadata!.name!, namespace: 'demo' })), { timeoutMs: 120_000, intervalMs: 250 });
      // With the archive on (issue 27) it is not evicted at once but taken out of its
      // ReplicaSet as a quarantine is (replaced as soon), kept 30 s for its dumps, archived, deleted.
      const secondName = second.metadata!.name!;
      const outAt = await waitFor('the crashed pod out of service', async () => ((p) => (!p || p.metadata?.deletionTimestamp || p.metadata?.uid !== second.metadata!.uid || p.metadata?.labels?.app === undefined ? Date.now() : undefined))(await core.readNamespacedPod({ name: secondName, namespace: 'demo' }).catch(() => undefined)), { timeoutMs: graceMs + 30_000, intervalMs: 250 });
      assert.ok(outAt - notReadyAt <= graceMs + 5_000, `out of service ${outAt - notReadyAt} ms after it turned NotReady (grace ${graceMs} ms)`);
      const events = (await core.listNamespacedEvent({ namespace: 'demo', fieldSelector: 'involvedObject.name=shop' })).items.map((e) => e.reason);
      assert.ok(!events.includes('SystemicFailure'), `not a systemic failure: ${events.join(', ')}`);
      await waitFor('shop back to 2/2', async () => ((await apps.readNamespacedDeployment({ name: 'shop', namespace: 'demo' })).status?.readyReplicas ?? 0) === 2, { timeoutMs: 180_000, intervalMs: 1000 });
      await waitFor('the crashed pod deleted once its scene is archived', async () => ((p) => !p || !!p.metadata?.deletionTimestamp || p.metadata?.uid !== second.metadata!.uid)(await core.readNamespacedPod({ name: secondName, namespace: 'demo' }).catch(() => undefined)), { timeoutMs: 180_000, intervalMs: 1000 });
      assert.equal((await core.listNamespacedPod({ namespace: 'demo', labelSelector: 'sickbay.io/status=quarantined' })).items.filter((p) => !p.metadata?.deletionTimestamp).length, 1, 'the first scene is still kept');

      // Step 6, as printed: the next morning. The archive's settings from the printed export line.
      const exported = /export (SICKBAY_ARCHIVE_ENDPOINT=\S+(?: SICKBAY_ARCHIVE_\w+=\S+)*)/.exec(playground.output());
      assert.ok(exported, 'step 6 prints the archive settings to export');
      const archiveEnv = Object.fromEntries(exported[1]!.split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      const sickbay = (args: string[]) => new Promise<string>((resolve, reject) =>
        execFile('npm', ['run', '-s', 'sickbay', '--', ...args], { cwd: root, env: { ...process.env, ...archiveEnv }, timeout: 180_000 }, (err, stdout, stderr) => (err ? reject(new Error(`sickbay ${args.join(' ')}: ${stderr}${stdout}`)) : resolve(stdout))),
      );
      const kubeconfigFile = path.join(realDir, 'kubeconfig');
      const released = await sickbay(['release', `demo/${name}`, '--kubeconfig', kubeconfigFile]);
      const listed = await sickbay(['archives', 'list', '-n', 'demo']);
      // What an on-call engineer sees (the README quotes a run of it).
      process.stdout.write(`# the next morning:\n# $ sickbay release demo/${name}\n${released.replace(/^/gm, '# ')}\n# $ sickbay archives list -n demo\n${listed.replace(/^/gm, '# ')}\n`);
      assert.match(released, new RegExp(`released demo/${name}: sickbay deleted the pod; its scene is archived at s3://scenes/sickbay/demo/deployment-shop/${name}_`));
      assert.match(listed, new RegExp(`deployment/shop\\s+${secondName}\\s`), 'the crashed pod of step 5, archived before it went');
      const key = new RegExp(`(sickbay/demo/deployment-shop/${name}_\\S+\\.tar\\.gz)`).exec(listed)?.[1];
      assert.ok(key, listed);
      const file = path.join(realDir, 'scene.tar.gz');
      await sickbay(['archives', 'get', key, '-o', file]);
      const archivedThreads = execFileSync('sh', ['-c', 'tar -xzOf "$0" --wildcards "*/sickbay/diag/*/threads.txt"', file], { encoding: 'utf8' });
      assert.match(archivedThreads, /Found one Java-level deadlock/, "step 4's thread dump, from the archive, its pod gone");
      // Its checkpoint too, read from the node through the agent before the pod went (issue 30).
      const archivedListing = execFileSync('tar', ['-tzvf', file], { encoding: 'utf8' });
      if (!/\/checkpoints\/app\.tar$/m.test(archivedListing)) {
        const manifest = execFileSync('sh', ['-c', 'tar -xzOf "$0" --wildcards "*/MANIFEST"', file], { encoding: 'utf8' });
        assert.fail(`step 4's checkpoint is not in the archived scene; its MANIFEST says: ${manifest.split('\n').filter((l) => l.startsWith('missing')).join('; ')}`);
      }
      assert.match(execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }), /\/sickbay\/diag\/[^/]+\/flight\.jfr\n/, 'and its flight recording');
    } finally {
      await playground.interrupt();
    }
    assert.ok(!existsSync(`/sys/class/net/${REAL_NODE.nodeLink}`), 'the real node link is gone');
    assert.ok(!existsSync('/sys/fs/cgroup/memory/kubepods') && !existsSync('/sys/fs/cgroup/kubepods'), "the kubelet's cgroups are gone");
  });
});
