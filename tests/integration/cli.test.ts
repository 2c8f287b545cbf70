// The command line as a user gets it: `npm pack`, `npm install -g` of the archive, then
// `sickbay` and, through the real kubectl's plugin lookup, `kubectl sickbay` against the
// local control plane; and the errors of a missing or unreachable cluster.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { ensureBinaries } from '../../src/dev/binaries.js';
import { createNamespace, startCluster, type TestCluster } from '../support/cluster.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('the command line, installed from its npm archive', { timeout: 600_000 }, () => {
  let t: TestCluster;
  let dir: string;
  let bin: string;
  let kubectl: string;
  const env = () => ({ PATH: `${bin}:${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: path.join(dir, 'home') });
  const run = (file: string, args: string[], extra: Record<string, string> = {}, input?: string) =>
    new Promise<Run>((resolve) => {
      const child = execFile(file, args, { env: { ...env(), ...extra }, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
      if (input !== undefined) child.stdin!.end(input);
    });

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sickbay-cli-'));
    kubectl = (await ensureBinaries(undefined, process.env, ['kubectl'])).kubectl;
    // `npm pack` builds dist/ (prepack); the archive is installed as a user would.
    const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: repo, encoding: 'utf8', maxBuffer: 16 << 20 }).trim().split('\n').pop()!;
    const archive = path.join(dir, packed);
    const listing = execFileSync('tar', ['-tzf', archive], { encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.ok(listing.includes('package/dist/cli.js') && listing.includes('package/shim/install'), listing.slice(0, 20).join(' '));
    const shipped = listing.filter((f) => f.startsWith('package/dist/dev/') || f.endsWith('.map') || f.startsWith('package/src/') || f.startsWith('package/tests/'));
    assert.deepEqual(shipped, [], 'no dev tooling, source maps, sources or tests in the archive');
    execFileSync('npm', ['install', '--global', '--prefix', path.join(dir, 'prefix'), '--prefer-offline', '--no-audit', '--no-fund', archive], { encoding: 'utf8', maxBuffer: 16 << 20 });
    bin = path.join(dir, 'prefix', 'bin');
    t = await startCluster({ nodes: 1 });
    await createNamespace(t.core, 'shop', { 'sickbay.io/injection': 'enabled' });
    // What status reads, made directly (no sickbay running): a quarantined pod and an
    // injected pod with a container the supervisor could not wrap.
    await t.core.createNamespacedPod({
      namespace: 'shop',
      body: {
        metadata: { name: 'broken-1', labels: { 'sickbay.io/status': 'quarantined' }, annotations: { 'sickbay.io/quarantined-at': new Date().toISOString(), 'sickbay.io/owner': 'Deployment/web', 'sickbay.io/reason': 'NotReady for 10s' } },
        spec: { containers: [{ name: 'web', image: 'example.com/web:1' }] },
      },
    });
    await t.core.createNamespacedPod({
      namespace: 'shop',
      body: {
        metadata: { name: 'redis-0', annotations: { 'sickbay.io/injected': 'true' } },
        spec: { containers: [{ name: 'redis', image: 'example.com/redis:7' }] },
      },
    });
  });
  after(async () => {
    await t?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('installs `sickbay` and `kubectl-sickbay`; --version and --help work without a cluster', async () => {
    assert.ok(existsSync(path.join(bin, 'sickbay')) && existsSync(path.join(bin, 'kubectl-sickbay')), readdirSync(bin).join(', '));
    const v = await run(path.join(bin, 'sickbay'), ['--version']);
    assert.deepEqual([v.code, v.stdout], [0, 'sickbay 0.1.0\n']);
    const plugins = await run(kubectl, ['plugin', 'list']);
    assert.match(plugins.stdout, /kubectl-sickbay/, plugins.stderr);
    const help = await run(kubectl, ['sickbay', '--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /kubectl sickbay status \[-o json\|yaml\]/, 'help names the command as it was called');
  });

  it('`kubectl sickbay status` reads the cluster of the kubeconfig, in text, JSON and YAML', async () => {
    const kc = { KUBECONFIG: t.cp.kubeconfigPath };
    const text = await run(kubectl, ['sickbay', 'status'], kc);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /Quarantined pods \(1\):\n.*\nshop\/broken-1 +\S+ +Deployment\/web +NotReady for 10s/);
    assert.match(text.stdout, /shop\/Pod\/redis-0 {3}redis \(1 pods\); fix: annotate the pod template sickbay\.io\/entrypoint\.redis=/);
    const json = await run(kubectl, ['sickbay', 'status', '-o', 'json'], kc);
    const report = JSON.parse(json.stdout);
    assert.deepEqual(report.quarantinedPods.map((p: { name: string }) => p.name), ['broken-1']);
    assert.deepEqual(report.unsupervisedContainers, [{ namespace: 'shop', workload: 'Pod/redis-0', containers: ['redis'], pods: 1, fix: `sickbay.io/entrypoint.redis='["<entrypoint>"]'` }]);
    const y = await run(path.join(bin, 'sickbay'), ['status', '-o', 'yaml', '--kubeconfig', t.cp.kubeconfigPath]);
    assert.deepEqual(yaml.load(y.stdout), report, 'YAML and JSON say the same');
  });

  it('--context picks the kubeconfig context; an unknown one is named with the ones there are', async () => {
    const file = path.join(dir, 'two-contexts.yaml');
    const kc = yaml.load(execFileSync('cat', [t.cp.kubeconfigPath], { encoding: 'utf8' })) as { contexts: Array<{ name: string; context: object }>; clusters: Array<{ name: string; cluster: { server: string } }>; 'current-context': string };
    // The current context points at nothing that answers; --context picks the live one.
    const live = kc.contexts[0]!;
    kc.clusters.push({ name: 'gone', cluster: { server: 'https://127.0.0.1:1' } });
    kc.contexts.push({ name: 'gone', context: { ...live.context, cluster: 'gone' } });
    kc['current-context'] = 'gone';
    writeFileSync(file, yaml.dump(kc));
    const dead = await run(path.join(bin, 'sickbay'), ['status', '--kubeconfig', file]);
    assert.equal(dead.code, 1);
    assert.equal(dead.stderr, 'sickbay: cannot reach the cluster at https://127.0.0.1:1 (context gone): ECONNREFUSED\n');
    const picked = await run(path.join(bin, 'sickbay'), ['status', '--kubeconfig', file, '--context', live.name]);
    assert.equal(picked.code, 0, picked.stderr);
    const unknown = await run(path.join(bin, 'sickbay'), ['status', '--kubeconfig', file, '--context', 'prod']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, `sickbay: context "prod" is not in the kubeconfig (it has: ${live.name}, gone)\n`);
  });

  it('without any kubeconfig: a clear error and a non-zero exit, not a call to localhost', async () => {
    const r = await run(path.join(bin, 'sickbay'), ['status']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sickbay: no kubeconfig: pass --kubeconfig <file>, set \$KUBECONFIG, or create ~\/\.kube\/config/);
    const bad = await run(path.join(bin, 'sickbay'), ['status', '-o', 'xml', '--kubeconfig', t.cp.kubeconfigPath]);
    assert.deepEqual([bad.code, bad.stderr], [1, 'sickbay: -o xml: choose one of text, json, yaml\n']);
  });

  it('`kubectl sickbay collect`: a clear error and exit code for no such pod (3), a pod without the shim (4), no exec permission (5), a bad size (2)', async () => {
    const kc = { KUBECONFIG: t.cp.kubeconfigPath };
    const missing = await run(kubectl, ['sickbay', 'collect', 'nope', '-n', 'shop'], kc);
    assert.deepEqual([missing.code, missing.stderr.trim()], [3, 'kubectl sickbay collect: no pod shop/nope']);
    const bare = await run(kubectl, ['sickbay', 'collect', 'redis-0', '-n', 'shop'], kc);
    assert.equal(bare.code, 4, bare.stderr);
    assert.match(bare.stderr, /pod shop\/redis-0 has no sickbay shim \(it was not injected/);
    // A pod with the shim, and an identity that may read pods but not exec into them.
    await t.core.createNamespacedPod({ namespace: 'shop', body: { metadata: { name: 'scene' }, spec: { volumes: [{ name: 'sickbay-shim', emptyDir: {} }], containers: [{ name: 'app', image: 'example.com/app:1', volumeMounts: [{ name: 'sickbay-shim', mountPath: '/sickbay' }] }] } } });
    const rbac = t.kc.makeApiClient((await import('@kubernetes/client-node')).RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({ namespace: 'shop', body: { metadata: { name: 'reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] } });
    await rbac.createNamespacedRoleBinding({ namespace: 'shop', body: { metadata: { name: 'reader' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' }, subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: 'shop' }] } });
    const reader = path.join(dir, 'reader.kubeconfig');
    writeFileSync(reader, (await t.cp.serviceAccountKubeConfig('shop', 'reader')).exportConfig());
    const refused = await run(kubectl, ['sickbay', 'collect', 'scene', '-n', 'shop'], { KUBECONFIG: reader });
    assert.equal(refused.code, 5, refused.stderr);
    assert.match(refused.stderr, /not allowed to exec into pod shop\/scene \(create pods\/exec\), which collecting its scene needs/);
    const size = await run(kubectl, ['sickbay', 'collect', 'scene', '-n', 'shop', '--max-size', 'lots'], kc);
    assert.equal(size.code, 2, size.stderr);
    assert.ok(!readdirSync(process.cwd()).some((f) => f.startsWith('shop_scene_')), 'no bundle left behind by a refusal');
  });

  it('`sickbay inject -f -` prints the mutated manifest and says why a container is left alone', async () => {
    const manifest = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - {name: app, image: nginx}\n';
    const r = await run(path.join(bin, 'sickbay'), ['inject', '-f', '-', '--shim-image', 'registry.internal/sickbay-shim:0.1.0'], {}, manifest);
    assert.equal(r.code, 0, r.stderr);
    const d = yaml.load(r.stdout) as { spec: { template: { spec: { initContainers: Array<{ image: string }> } } } };
    assert.equal(d.spec.template.spec.initContainers[0]!.image, 'registry.internal/sickbay-shim:0.1.0');
    assert.match(r.stderr, /# Deployment\/web: container "app" has no command.*sickbay\.io\/entrypoint\.app/);
  });
});
