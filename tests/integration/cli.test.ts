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
import { ensureBinaries } from '../../dev/binaries.js';
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
    assert.match(help.stdout, /Run `kubectl sickbay <command> --help`/, 'help names the command as it was called');
    const status = await run(kubectl, ['sickbay', 'status', '--help']);
    assert.match(status.stdout, /^Usage: kubectl sickbay status \[-n <namespace>\] \[-o text\|json\|yaml\]/);
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
    assert.equal(dead.code, 5);
    assert.equal(dead.stderr, 'sickbay: cannot reach the cluster at https://127.0.0.1:1 (context gone): ECONNREFUSED\n');
    const picked = await run(path.join(bin, 'sickbay'), ['status', '--kubeconfig', file, '--context', live.name]);
    assert.equal(picked.code, 0, picked.stderr);
    const unknown = await run(path.join(bin, 'sickbay'), ['status', '--kubeconfig', file, '--context', 'prod']);
    assert.equal(unknown.code, 3);
    assert.equal(unknown.stderr, `sickbay: context "prod" is not in the kubeconfig (it has: ${live.name}, gone)\n`);
  });

  it('without any kubeconfig: a clear error and a non-zero exit, not a call to localhost', async () => {
    const r = await run(path.join(bin, 'sickbay'), ['status']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sickbay: no kubeconfig: pass --kubeconfig <file>, set \$KUBECONFIG, or create ~\/\.kube\/config/);
    const bad = await run(path.join(bin, 'sickbay'), ['status', '-o', 'xml', '--kubeconfig', t.cp.kubeconfigPath]);
    assert.deepEqual([bad.code, bad.stderr], [2, 'sickbay: -o xml: choose one of text, json, yaml\n']);
  });

  it('`kubectl sickbay collect`: a clear error and exit code for no such pod (3), a pod without the shim (6), no exec permission (4), a bad size (2)', async () => {
    const kc = { KUBECONFIG: t.cp.kubeconfigPath };
    const missing = await run(kubectl, ['sickbay', 'collect', 'nope', '-n', 'shop'], kc);
    assert.deepEqual([missing.code, missing.stderr.trim()], [3, 'kubectl sickbay: no pod shop/nope']);
    const bare = await run(kubectl, ['sickbay', 'collect', 'redis-0', '-n', 'shop'], kc);
    assert.equal(bare.code, 6, bare.stderr);
    assert.match(bare.stderr, /pod shop\/redis-0 has no sickbay shim \(it was not injected/);
    // A pod with the shim, and an identity that may read pods but not exec into them.
    await t.core.createNamespacedPod({ namespace: 'shop', body: { metadata: { name: 'scene' }, spec: { volumes: [{ name: 'sickbay-shim', emptyDir: {} }], containers: [{ name: 'app', image: 'example.com/app:1', volumeMounts: [{ name: 'sickbay-shim', mountPath: '/sickbay' }] }] } } });
    const rbac = t.kc.makeApiClient((await import('@kubernetes/client-node')).RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({ namespace: 'shop', body: { metadata: { name: 'reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] } });
    await rbac.createNamespacedRoleBinding({ namespace: 'shop', body: { metadata: { name: 'reader' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' }, subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: 'shop' }] } });
    const reader = path.join(dir, 'reader.kubeconfig');
    writeFileSync(reader, (await t.cp.serviceAccountKubeConfig('shop', 'reader')).exportConfig());
    const refused = await run(kubectl, ['sickbay', 'collect', 'scene', '-n', 'shop'], { KUBECONFIG: reader });
    assert.equal(refused.code, 4, refused.stderr);
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

  it('`release` and `node`: each error says what failed, with its exit code (usage 2, not found 3, refused 4, unreachable 5, not quarantined 6)', async () => {
    const kc = { KUBECONFIG: t.cp.kubeconfigPath };
    const sb = path.join(bin, 'sickbay');
    const expect = async (args: string[], code: number, stderr: RegExp, env: Record<string, string> = kc) => {
      const r = await run(sb, args, env);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, stderr, args.join(' '));
      assert.doesNotMatch(r.stderr, /HTTP-Code|Headers:|at .*\.js:\d+/, `${args.join(' ')}: one line, no dump or stack`);
      return r;
    };
    // Usage.
    await expect(['release'], 2, /^sickbay: which pod\?\n\nUsage: sickbay release <pod> \[-n <namespace>\]/);
    await expect(['release', 'Not_A/Pod!'], 2, /^sickbay: "Not_A\/Pod!" is not a pod name \(<pod> or <namespace>\/<pod>\)\n$/);
    await expect(['release', 'shop/broken-1', '-n', 'other'], 2, /names namespace shop, -n says other/);
    await expect(['release', 'shop/broken-1', '--wait', 'soon'], 2, /^sickbay: --wait soon: /);
    await expect(['release', 'shop/broken-1', '--frobnicate'], 2, /^sickbay: Unknown option '--frobnicate'/);
    await expect(['node', 'frob', 'n1'], 2, /^sickbay: unknown action "frob": protect or restore/);
    await expect(['node', 'protect', 'nope'], 2, /--for <duration> is required/);
    await expect(['node', 'protect', 'nope', '--for', '5x'], 2, /^sickbay: --for 5x: /);
    await expect(['frobnicate'], 2, /^sickbay: unknown command "frobnicate"/);
    // Not found, and not applicable.
    await expect(['release', 'nope', '-n', 'shop'], 3, /^sickbay: pod shop\/nope: no such pod\n$/);
    await expect(['release', 'redis-0', '-n', 'shop'], 6, /^sickbay: pod shop\/redis-0 is not quarantined by sickbay; nothing to release\n$/);
    await expect(['node', 'restore', 'no-such-node'], 3, /^sickbay: node "no-such-node": not found\n$/);
    await expect(['node', 'protect', 'no-such-node', '--for', '2h'], 3, /^sickbay: node "no-such-node": not found\n$/);
    // Refused: an identity that may read pods in shop, and nothing else.
    const reader = { KUBECONFIG: path.join(dir, 'reader-only.kubeconfig') };
    const rbac = t.kc.makeApiClient((await import('@kubernetes/client-node')).RbacAuthorizationV1Api);
    await t.core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'viewer' } } });
    await rbac.createNamespacedRole({ namespace: 'shop', body: { metadata: { name: 'viewer' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] } });
    await rbac.createNamespacedRoleBinding({ namespace: 'shop', body: { metadata: { name: 'viewer' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'viewer' }, subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: 'shop' }] } });
    writeFileSync(reader.KUBECONFIG, (await t.cp.serviceAccountKubeConfig('shop', 'viewer')).exportConfig());
    await expect(['release', 'broken-1', '-n', 'shop'], 4, /^sickbay: cannot ask sickbay to release shop\/broken-1 \(annotate sickbay\.io\/release\): refused: 403 pods "broken-1" is forbidden/, reader);
    await expect(['node', 'restore', 'some-node'], 4, /^sickbay: node "some-node": refused: 403 nodes "some-node" is forbidden/, reader);
    // Unreachable.
    const dead = path.join(dir, 'dead.kubeconfig');
    const cfg = yaml.load(execFileSync('cat', [t.cp.kubeconfigPath], { encoding: 'utf8' })) as { clusters: Array<{ cluster: { server: string } }> };
    for (const c of cfg.clusters) c.cluster.server = 'https://127.0.0.1:1';
    writeFileSync(dead, yaml.dump(cfg));
    await expect(['release', 'shop/broken-1'], 5, /^sickbay: cannot reach the cluster at https:\/\/127\.0\.0\.1:1 \(context .*\): ECONNREFUSED\n$/, { KUBECONFIG: dead });
    await expect(['node', 'restore', 'n1'], 5, /^sickbay: cannot reach the cluster at https:\/\/127\.0\.0\.1:1 .*ECONNREFUSED\n$/, { KUBECONFIG: dead });
    await expect(['node', 'protect', 'n1', '--for', '1h'], 5, /ECONNREFUSED/, { KUBECONFIG: dead });
  });

  it('`status -n` shows one namespace; `--sickbay-namespace` is sickbay\'s own', async () => {
    await createNamespace(t.core, 'other', { 'sickbay.io/injection': 'enabled' });
    await t.core.createNamespacedPod({ namespace: 'other', body: { metadata: { name: 'broken-2', labels: { 'sickbay.io/status': 'quarantined' } }, spec: { containers: [{ name: 'web', image: 'example.com/web:1' }] } } });
    const all = JSON.parse((await run(path.join(bin, 'sickbay'), ['status', '-o', 'json'], { KUBECONFIG: t.cp.kubeconfigPath })).stdout) as { quarantinedPods: Array<{ name: string }> };
    assert.deepEqual(all.quarantinedPods.map((p) => p.name).sort(), ['broken-1', 'broken-2']);
    const one = await run(path.join(bin, 'sickbay'), ['status', '-n', 'other', '-o', 'json', '--sickbay-namespace', 'sickbay-system'], { KUBECONFIG: t.cp.kubeconfigPath });
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual((JSON.parse(one.stdout) as { quarantinedPods: Array<{ name: string }> }).quarantinedPods.map((p) => p.name), ['broken-2']);
  });

  it('`certs --apply` writes the Secret the chart can use; `inject --kubeconfig` reads the namespace as the webhook does', async () => {
    const out = path.join(dir, 'certs');
    await createNamespace(t.core, 'sickbay-system');
    const first = await run(path.join(bin, 'sickbay'), ['certs', '--out', out, '-n', 'sickbay-system', '--apply', '--kubeconfig', t.cp.kubeconfigPath]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /created Secret sickbay-system\/sickbay-tls\n$/);
    const again = await run(path.join(bin, 'sickbay'), ['certs', '--out', out, '-n', 'sickbay-system', '--apply', '--secret', 'sickbay-tls', '--kubeconfig', t.cp.kubeconfigPath]);
    assert.match(again.stdout, /replaced Secret sickbay-system\/sickbay-tls\n$/);
    const secret = await t.core.readNamespacedSecret({ namespace: 'sickbay-system', name: 'sickbay-tls' });
    assert.equal(Buffer.from(secret.data!['tls.crt']!, 'base64').toString(), execFileSync('cat', [path.join(out, 'tls.crt')], { encoding: 'utf8' }));
    const noApply = await run(path.join(bin, 'sickbay'), ['certs', '--out', out, '--context', 'x']);
    assert.equal(noApply.code, 2, noApply.stderr);
    // The namespace's flight recorder counts only when a cluster is read.
    await createNamespace(t.core, 'jfr', { 'sickbay.io/injection': 'enabled' });
    await t.core.patchNamespace({ name: 'jfr', body: { metadata: { annotations: { 'sickbay.io/flight-recorder': 'true' } } } }, (await import('../../src/kube/api.js')).mergePatch);
    const pod = 'apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  containers:\n    - {name: app, image: java, command: [java, -jar, app.jar]}\n';
    const offline = await run(path.join(bin, 'sickbay'), ['inject', '-f', '-', '-o', 'json', '-n', 'jfr'], {}, pod);
    assert.doesNotMatch(offline.stdout, /SICKBAY_JFR_OPTIONS/);
    const online = await run(path.join(bin, 'sickbay'), ['inject', '-f', '-', '-o', 'json', '-n', 'jfr', '--kubeconfig', t.cp.kubeconfigPath], {}, pod);
    assert.equal(online.code, 0, online.stderr);
    assert.match(online.stdout, /SICKBAY_JFR_OPTIONS/);
  });

  it('`sickbay completion bash` completes commands and each command\'s flags', async () => {
    const script = path.join(dir, 'completion.bash');
    const r = await run(path.join(bin, 'sickbay'), ['completion', 'bash']);
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(script, r.stdout);
    const complete = (words: string[]) =>
      execFileSync('bash', ['-c', `source ${script}; COMP_WORDS=(${words.join(' ')}); COMP_CWORD=${words.length - 1}; _sickbay_complete; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' }).trim();
    assert.equal(complete(['sickbay', 'coll']), 'collect');
    assert.equal(complete(['sickbay', 'release', '--n']), '--namespace --now');
    assert.equal(complete(['sickbay', 'node', 'r']), 'restore');
    assert.equal((await run(path.join(bin, 'sickbay'), ['completion', 'fish'])).code, 2);
  });
});
