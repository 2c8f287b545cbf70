// A forensic checkpoint of every quarantined container (issue 30), on the real node:
// containerd 2.x with CRIU 4.x, a real kubelet whose ContainerCheckpoint API authorizes the
// agent's ServiceAccount (nodes/checkpoint, by SubjectAccessReview), the archive read back
// by `sickbay checkpoint inspect`, restored with runc as docs/checkpoints.md says, and
// removed when the scene goes. Beside it, on kwok nodes, the cases where no checkpoint can
// be taken: an agent without checkpoints, and no agent at all; the quarantine stands.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CustomObjectsApi, type KubeConfig, type V1Pod, type V1PodSpec } from '@kubernetes/client-node';
import { NodeAgent } from '../../src/agent/agent.js';
import { parseProcessSpecs } from '../../src/core/agent-settings.js';
import { createLogger } from '../../src/core/log.js';
import { ANN_CHECKPOINT, ANN_CHECKPOINT_RESULT, ANN_DIAGNOSTICS, ANN_ISOLATE, LABEL_STATUS, SHIM_VOLUME } from '../../src/core/names.js';
import type { CheckpointResult, NodeHealth } from '../../src/core/nodehealth.js';
import { buildImages, IMAGES } from '../../dev/images.js';
import { findBinaries } from '../../dev/binaries.js';
import { REAL_NODE } from '../../dev/real-node.js';
import { installAgentIdentity, installNodeHealthCrd } from '../../dev/local-install.js';
import { sleep, waitFor } from '../../src/util/wait.js';
import { mergePatch } from '../../src/kube/api.js';
import { createNamespace, eventsOf, isReady, podsOf, startCluster, type TestCluster } from '../support/cluster.js';
import { procRoot, type ProcRoot } from '../support/proc-root.js';
import { type RunningSickbay, SICKBAY_NS, startSickbay, waitForInjection } from '../support/sickbay.js';

const ns = 'ckpt';
const repo = path.resolve(import.meta.dirname, '../..');

/** `sickbay <args>` from the source, as a user runs it. */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli.ts'), ...args], { cwd: repo, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

describe('a checkpoint of each quarantined container (CRIU through the kubelet, taken by the node agent)', { timeout: 900_000 }, () => {
  let t: TestCluster;
  let sickbay: RunningSickbay;
  let checkpointDir: string;
  const agents: Array<{ abort: AbortController; running: Promise<void>; proc?: ProcRoot }> = [];
  const log = createLogger((process.env.SICKBAY_TEST_LOG_LEVEL as 'warn') ?? 'warn');
  let kwokNodes: string[] = [];

  const startAgent = (kc: KubeConfig, node: string) => {
    const real = node === REAL_NODE.name;
    const proc = real ? undefined : procRoot();
    proc?.add(100, 'containerd');
    const agent = new NodeAgent(
      kc,
      {
        nodeName: node,
        checks: ['processes'],
        checkIntervalMs: 1000,
        heartbeatIntervalMs: 2000,
        failureThreshold: 3,
        kubeletUrl: 'http://127.0.0.1:1/healthz',
        networkTargets: [],
        processes: parseProcessSpecs('containerd'),
        procRoot: proc?.root ?? '/proc',
        // Only the real node's agent may checkpoint (its kubelet is real); the kwok node's agent has checkpoints off.
        ...(real ? { checkpoints: { kubeletApi: t.cp.realNode!.kubeletApi, kubeletCaFile: '', kubeletInsecure: false, timeoutMs: 60_000, archiveDir: checkpointDir } } : {}),
      },
      log.child({ component: 'agent', node }),
    );
    const abort = new AbortController();
    agents.push({ abort, running: agent.run(abort.signal), proc });
  };

  const readPod = (name: string) => t.core.readNamespacedPod({ name, namespace: ns });
  const resultOf = (p: V1Pod): CheckpointResult | undefined => {
    const v = p.metadata?.annotations?.[ANN_CHECKPOINT_RESULT];
    return v ? (JSON.parse(v) as CheckpointResult) : undefined;
  };
  const healthOf = async (node: string) => (await t.kc.makeApiClient(CustomObjectsApi).getClusterCustomObject({ group: 'sickbay.io', version: 'v1alpha1', plural: 'nodehealths', name: node })) as NodeHealth;
  /** A one-pod Deployment; its pods' annotations as given. */
  const deploy = async (name: string, spec: V1PodSpec, annotations: Record<string, string> = {}) => {
    await t.apps.createNamespacedDeployment({
      namespace: ns,
      body: { metadata: { name }, spec: { replicas: 1, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name }, annotations }, spec } } },
    });
    return waitFor(
      `a ready ${name} pod`,
      async () => (await podsOf(t.core, ns, `app=${name}`)).find((p) => isReady(p) && !p.metadata?.deletionTimestamp),
      { timeoutMs: 180_000 },
    );
  };
  const isolate = (pod: string) => t.core.patchNamespacedPod({ name: pod, namespace: ns, body: { metadata: { annotations: { [ANN_ISOLATE]: 'checkpoint test' } } } }, mergePatch);

  before(async () => {
    t = await startCluster({ nodes: 2, realNode: true });
    checkpointDir = path.join(t.cp.realNode!.kubeletRootDir, 'checkpoints');
    sickbay = await startSickbay(t, {
      SICKBAY_CONTROLLERS: 'true',
      SICKBAY_NOT_READY_GRACE: '1s',
      SICKBAY_SHIM_IMAGE: IMAGES.shim,
      SICKBAY_SHIM_SOURCE: '/opt/sickbay/shim',
      SICKBAY_DIAGNOSTICS_TIMEOUT: '30s',
      SICKBAY_CHECKPOINT_TIMEOUT: '30s',
      SICKBAY_MAX_QUARANTINED: '3',
    });
    // Opted in by the namespace: every quarantined pod here is checkpointed unless it says otherwise.
    await createNamespace(t.core, ns, { 'sickbay.io/injection': 'enabled' });
    await t.core.patchNamespace({ name: ns, body: { metadata: { annotations: { [ANN_CHECKPOINT]: 'true' } } } }, mergePatch);
    await waitForInjection(t.core, ns);
    await installNodeHealthCrd(t.kc);
    await installAgentIdentity(t.kc, SICKBAY_NS, 'sickbay-agent');
    const agentKc = await t.cp.serviceAccountKubeConfig(SICKBAY_NS, 'sickbay-agent');
    kwokNodes = (await t.core.listNode()).items.map((n) => n.metadata!.name!).filter((n) => n !== REAL_NODE.name);
    // The real node and the first kwok node have agents; the second kwok node has none.
    startAgent(agentKc, REAL_NODE.name);
    startAgent(agentKc, kwokNodes[0]!);
    await waitFor('the agents report', async () => !!(await healthOf(REAL_NODE.name).catch(() => undefined))?.status?.heartbeatTime && !!(await healthOf(kwokNodes[0]!).catch(() => undefined))?.status?.heartbeatTime);
  });
  after(async () => {
    for (const a of agents) a.abort.abort();
    await Promise.all(agents.map((a) => a.running));
    for (const a of agents) a.proc?.dispose();
    await sickbay?.stop();
    await t?.stop();
  });

  let counterPod = '';
  let archive = '';

  it('a quarantined uid-1000 app is checkpointed by its node agent before the dumps: the archive is on the node, named on the pod, in an Event', async () => {
    // The count lives in the shell's memory; the file only shows it.
    const pod = await deploy('counter', {
      nodeSelector: { [REAL_NODE.label]: 'real' },
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'app',
          image: IMAGES.workload,
          imagePullPolicy: 'Never',
          command: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done'],
          securityContext: { runAsUser: 1000, runAsGroup: 1000, allowPrivilegeEscalation: false },
        },
      ],
    });
    counterPod = pod.metadata!.name!;
    await sleep(6_000); // a count of 30 or so to resume from
    await isolate(counterPod);
    const result = await waitFor('the checkpoint result on the pod', async () => resultOf(await readPod(counterPod)), { timeoutMs: 90_000, intervalMs: 500 });
    assert.equal(result.status, 'ok', JSON.stringify(result));
    assert.equal(result.node, REAL_NODE.name);
    assert.equal(result.containers.length, 1);
    const c = result.containers[0]!;
    assert.equal(c.name, 'app');
    assert.equal(c.status, 'ok');
    archive = c.archive!;
    assert.equal(path.dirname(archive), checkpointDir, 'the kubelet wrote it in its checkpoints folder');
    assert.ok(existsSync(archive), `${archive} on the node`);
    assert.equal(c.bytes, statSync(archive).size);
    assert.ok(c.bytes! > 10_000);
    const p = await readPod(counterPod);
    assert.equal(p.metadata?.labels?.[LABEL_STATUS], 'quarantined', 'the quarantine stands');
    // Before the dumps: the diagnostics ran after the checkpoint was recorded.
    const diag = await waitFor('the diagnostics annotation', async () => (await readPod(counterPod)).metadata?.annotations?.[ANN_DIAGNOSTICS], { timeoutMs: 60_000 });
    assert.ok(new Date((JSON.parse(diag) as { at: string }).at) >= new Date(result.at), `diagnostics ${diag} after the checkpoint ${result.at}`);
    const events = await eventsOf(t, ns, { name: counterPod, reason: 'CheckpointTaken' });
    assert.equal(events.length, 1);
    assert.match(events[0]!.message ?? '', new RegExp(`kept on node ${REAL_NODE.name}: ${archive.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    // The NodeHealth holds the request and the agent's record.
    const health = await healthOf(REAL_NODE.name);
    assert.deepEqual(health.spec?.checkpoints?.map((r) => [r.pod, r.container]), [[counterPod, 'app']]);
    assert.equal(health.status?.checkpoints?.find((r) => r.container === 'app')?.archive, archive);
  });

  it('`sickbay checkpoint inspect` shows the process tree, its user, open files and memory from the archive', async () => {
    assert.ok(archive, 'the first test took the archive');
    const json = await cli(['checkpoint', 'inspect', archive, '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const s = JSON.parse(json.stdout) as { container?: { name?: string }; user?: { uid?: number }; processes: Array<{ pid: number; ppid: number; name: string; memoryBytes: number; files: Array<{ fd: number; type: string; name?: string }> }>; memoryBytes: number; criuImages: number };
    assert.equal(s.container?.name, 'app');
    assert.equal(s.user?.uid, 1000);
    assert.ok(s.memoryBytes > 0);
    const names = s.processes.map((p) => p.name);
    // The supervisor's shell and the app's shell under it.
    assert.ok(names.filter((n) => n === 'sh').length >= 1, names.join(','));
    assert.ok(s.processes.every((p) => p.memoryBytes > 0), 'each process has dumped memory');
    assert.ok(s.processes.some((p) => p.files.some((f) => f.fd <= 2)), 'standard descriptors are listed');
    const text = await cli(['checkpoint', 'inspect', archive]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^container {2}app/m);
    assert.match(text.stdout, /^user {7}uid 1000, gid 1000$/m);
    assert.match(text.stdout, /^processes$/m);
    // Not a checkpoint: a clear error and its exit code.
    const bad = await cli(['checkpoint', 'inspect', path.join(repo, 'package.json')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not a readable tar archive|not a container checkpoint/);
    assert.equal((await cli(['checkpoint', 'inspect', '/nonexistent.tar'])).code, 3);
  });

  it('restores with runc from the archive, as docs/checkpoints.md says: the app goes on counting from its checkpointed value', async () => {
    assert.ok(archive, 'the first test took the archive');
    const criu = findBinaries(process.env, ['criu']).found.criu;
    assert.ok(criu, 'CRIU is built into the cache with the real node');
    const { workload } = await buildImages(['workload']);
    const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-restore-'));
    const bundle = path.join(dir, 'bundle');
    const name = `sickbay-test-${process.pid}`;
    const quiet = (cmd: string, args: string[]) => {
      try {
        execFileSync(cmd, args, { stdio: 'ignore' });
      } catch {
        // not there
      }
    };
    try {
      // The pod's /sickbay volume, copied from the node beside the archive (docs/checkpoints.md): the supervisor runs from it.
      const uid = (await readPod(counterPod)).metadata!.uid!;
      const volume = path.join(dir, 'sickbay');
      execFileSync('cp', ['-a', path.join(t.cp.realNode!.kubeletRootDir, 'pods', uid, 'volumes/kubernetes.io~empty-dir', SHIM_VOLUME), volume]);
      const made = await cli(['checkpoint', 'restore-bundle', archive, '--rootfs', workload, '--volume', `/sickbay=${volume}`, '-o', bundle, '--netns', name, '--name', name]);
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout, new RegExp(`runc restore --bundle ${bundle} `));
      // The count as the archive holds it (the file the app wrote last before the checkpoint).
      const count = () => Number(readFileSync(path.join(bundle, 'rootfs/tmp/count'), 'utf8').trim());
      const checkpointed = count();
      assert.ok(checkpointed >= 20, `the app counted to ${checkpointed} before it was checkpointed`);
      execFileSync('ip', ['netns', 'add', name]);
      try {
        // The app's stdout and stderr were pipes: the restored ones go where runc's go, a file (as docs/checkpoints.md says).
        const out = openSync(path.join(dir, 'restored.log'), 'w');
        try {
          execFileSync('runc', ['restore', '--bundle', bundle, '--image-path', path.join(bundle, 'checkpoint-archive/checkpoint'), '--work-path', path.join(bundle, 'work'), '--detach', name], {
            env: { ...process.env, PATH: `${path.dirname(criu)}:${process.env.PATH}` },
            stdio: ['ignore', out, out],
          });
        } finally {
          closeSync(out);
        }
      } catch (err) {
        const logFile = path.join(bundle, 'work/restore.log');
        const errors = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter((l) => /Error/.test(l)).slice(0, 10).join('\n') : '(no restore.log)';
        throw new Error(`runc restore failed: ${readFileSync(path.join(dir, 'restored.log'), 'utf8').trim().slice(-500)}\nCRIU's errors:\n${errors}`, { cause: err });
      }
      // Resumed, not restarted: a new start would count from 1 again.
      const resumed = await waitFor('the restored app to count on', async () => (count() > checkpointed ? count() : undefined), { timeoutMs: 20_000, intervalMs: 200 });
      assert.ok(resumed > checkpointed && resumed < checkpointed + 100, `counted on from ${checkpointed} to ${resumed}`);
      assert.match(execFileSync('runc', ['exec', name, 'ps'], { encoding: 'utf8' }), /i=0; while true/);
    } finally {
      quiet('runc', ['delete', '--force', name]);
      quiet('ip', ['netns', 'del', name]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a pod that says sickbay.io/checkpoint: "false" in an opted-in namespace is not checkpointed; its dumps run at once', async () => {
    const pod = await deploy('nockpt', {
      nodeSelector: { [REAL_NODE.label]: 'real' },
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'app', image: IMAGES.workload, imagePullPolicy: 'Never', command: ['sh', '-c', 'while true; do sleep 1; done'], securityContext: { runAsUser: 1000, allowPrivilegeEscalation: false } }],
    }, { [ANN_CHECKPOINT]: 'false' });
    const name = pod.metadata!.name!;
    await isolate(name);
    await waitFor('its diagnostics', async () => (await readPod(name)).metadata?.annotations?.[ANN_DIAGNOSTICS], { timeoutMs: 60_000 });
    assert.equal(resultOf(await readPod(name)), undefined);
    assert.equal((await healthOf(REAL_NODE.name)).spec?.checkpoints?.some((r) => r.pod === name), false);
  });

  it('where no checkpoint can be taken it says why and the quarantine stands: an agent with checkpoints off, a node with no agent', async () => {
    const onNode = (node: string): V1PodSpec => ({
      nodeName: node,
      tolerations: [{ operator: 'Exists' }],
      containers: [{ name: 'app', image: 'example.com/app:1', command: ['/app'] }],
    });
    const off = await deploy('agent-off', onNode(kwokNodes[0]!));
    const none = await deploy('no-agent', onNode(kwokNodes[1]!));
    await isolate(off.metadata!.name!);
    await isolate(none.metadata!.name!);
    const offResult = await waitFor('the result where checkpoints are off', async () => resultOf(await readPod(off.metadata!.name!)), { timeoutMs: 60_000, intervalMs: 500 });
    assert.equal(offResult.status, 'failed');
    assert.match(offResult.containers[0]!.message ?? '', /checkpoints are off on this node's agent/);
    const noneResult = await waitFor('the result where no agent runs', async () => resultOf(await readPod(none.metadata!.name!)), { timeoutMs: 60_000, intervalMs: 500 });
    assert.equal(noneResult.status, 'no-agent');
    assert.match(noneResult.message ?? '', /no sickbay agent reports node/);
    for (const p of [off, none]) {
      assert.equal((await readPod(p.metadata!.name!)).metadata?.labels?.[LABEL_STATUS], 'quarantined');
      const failed = await eventsOf(t, ns, { name: p.metadata!.name!, reason: 'CheckpointFailed' });
      assert.equal(failed.length, 1);
      assert.equal(failed[0]!.type, 'Warning');
    }
  });

  it('the archive goes with the scene: released, its request leaves the NodeHealth and the agent removes the file', async () => {
    assert.ok(archive && existsSync(archive));
    const r = await cli(['release', `${ns}/${counterPod}`, '--kubeconfig', t.cp.kubeconfigPath, '--wait', '60s']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('the request withdrawn', async () => !(await healthOf(REAL_NODE.name)).spec?.checkpoints?.some((c) => c.pod === counterPod), { timeoutMs: 30_000 });
    await waitFor('the archive removed from the node', async () => !existsSync(archive), { timeoutMs: 30_000 });
    await waitFor('the record gone from the status', async () => !(await healthOf(REAL_NODE.name)).status?.checkpoints?.some((c) => c.archive === archive), { timeoutMs: 30_000 });
  });

});
