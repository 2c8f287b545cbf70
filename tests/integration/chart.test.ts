// The Helm chart: lint, schema, consistency with the code (RBAC, webhooks, CRD), every
// rendered object accepted by the real API server (server-side dry-run) in both
// certificate modes, and an install whose webhooks reach a locally running serve.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import yaml from 'js-yaml';
import { AdmissionregistrationV1Api, type KubeConfig, KubernetesObjectApi, RbacAuthorizationV1Api, type KubernetesObject, loadAllYaml, type V1PolicyRule } from '@kubernetes/client-node';
import { type ServeHandle, serve } from '../../src/manager/serve.js';
import { buildComponents } from '../../src/manager/components.js';
import { readConfig } from '../../src/core/config.js';
import { freePorts } from '../../dev/control-plane.js';
import { createLogger } from '../../src/core/log.js';
import { AGENT_METRICS, agentMetricsText } from '../../src/core/agent-metrics.js';
import { Metrics } from '../../src/core/metrics.js';
import { nodeHealthCrd } from '../../src/core/nodehealth.js';
import { agentClusterRules, SERVE_NAMESPACE_RULES, serveClusterRules, servingSecretRules } from '../../src/core/rbac.js';
import { issueCertificate } from '../../src/tls/certificates.js';
import { ensureServingSecret } from '../../src/tls/serving-secret.js';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from '../../src/webhook/webhook-configurations.js';
import { waitFor } from '../../src/util/wait.js';
import { scenario } from '../support/chaos.js';
import { createNamespace, startCluster, type TestCluster } from '../support/cluster.js';
import { chartDir, helm, template } from '../support/helm.js';
import { installThirdPartyCrds } from '../support/third-party-crds.js';

type Obj = KubernetesObject & Record<string, any>;
// Plain objects (loadAllYaml returns typed model instances).
const docs = (yaml: string) => JSON.parse(JSON.stringify((loadAllYaml(yaml) as Obj[]).filter(Boolean))) as Obj[];
const find = (all: Obj[], kind: string, name?: string) => all.find((o) => o.kind === kind && (!name || o.metadata?.name === name));
/** Rules as comparable strings: order of rules, verbs and resources does not matter. */
const canon = (rules: V1PolicyRule[]) =>
  rules
    .map((r) => JSON.stringify([[...(r.apiGroups ?? [])].sort(), [...(r.resources ?? [])].sort(), [...(r.verbs ?? [])].sort(), [...(r.resourceNames ?? [])].sort()]))
    .sort();
const NS = 'sickbay-system';
const MONITORING = ['monitoring.serviceMonitor.enabled', 'monitoring.podMonitor.enabled', 'monitoring.prometheusRule.enabled', 'monitoring.grafanaDashboard.enabled'];
const allMonitoring = Object.fromEntries(MONITORING.map((m) => [m, 'true']));
/** Every metric name sickbay's serve and agent processes export. */
const exportedMetrics = async () => new Set([...(await new Metrics().registry.getMetricsAsJSON()), ...Object.values(AGENT_METRICS)].map((m) => m.name));

describe('the Helm chart', () => {
  let t: TestCluster;
  before(async () => {
    t = await startCluster({ nodes: 2 });
    await installThirdPartyCrds(t.kc);
  });
  after(async () => {
    await t?.stop();
  });

  it('helm lint --strict is clean in both certificate modes, with monitoring on', async () => {
    for (const mode of ['cert-manager', 'self-managed']) {
      const r = await helm(['lint', chartDir, '--strict', '--namespace', NS, '--set', `certificates.mode=${mode}`, ...MONITORING.flatMap((m) => ['--set', `${m}=true`])]);
      assert.equal(r.code, 0, `${mode}:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(r.stdout, /\[(WARNING|ERROR)\]/);
    }
  });

  it('bad values fail at install time with the schema message', async () => {
    const cases: Array<[string, RegExp]> = [
      ['certificates.mode=vault', /at '\/certificates\/mode': value must be one of 'cert-manager', 'self-managed'/],
      ['replicas=two', /at '\/replicas': got string, want integer/],
      ['nodes.lockDuration=10m', /at '\/nodes\/lockDuration'/],
      ['agent.checks={kubelet,disk}', /at '\/agent\/checks\/1'/],
      ['unknownTopLevel=1', /additional properties 'unknownTopLevel' not allowed/],
      ['controllers.archive.enabled=true', /at '\/controllers\/archive\/(endpoint|bucket|credentialsSecret)': minLength/],
      ['controllers.archive.endpoint=s3.example.com', /at '\/controllers\/archive\/endpoint'/],
    ];
    for (const [set, message] of cases) {
      const r = await helm(['template', 'sickbay', chartDir, '--set', set]);
      assert.notEqual(r.code, 0, `--set ${set} was accepted`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/);
      assert.match(r.stderr, message, `--set ${set}: ${r.stderr}`);
    }
  });

  it("the agent listens on its node's own address, or where agent.bindAddress says (its probe follows)", async () => {
    type Agent = KubernetesObject & { spec: { template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>; livenessProbe: { httpGet: { host?: string } } }> } } } };
    const agentOf = async (set: Record<string, string>) => find(docs(await template(set)), 'DaemonSet') as Agent;
    const byDefault = (await agentOf({})).spec.template.spec.containers[0]!;
    assert.equal(byDefault.env.find((e) => e.name === 'SICKBAY_AGENT_BIND_ADDRESS')?.valueFrom?.fieldRef?.fieldPath, 'status.podIP');
    assert.equal(byDefault.livenessProbe.httpGet.host, undefined);
    const local = (await agentOf({ 'agent.bindAddress': '127.0.0.1' })).spec.template.spec.containers[0]!;
    assert.equal(local.env.find((e) => e.name === 'SICKBAY_AGENT_BIND_ADDRESS')?.value, '127.0.0.1');
    assert.equal(local.livenessProbe.httpGet.host, '127.0.0.1');
    const withoutGuard = docs(await template({ 'agentPolicy.enabled': 'false' }));
    assert.equal(find(withoutGuard, 'ValidatingAdmissionPolicy', 'sickbay-agent-guard'), undefined);
    assert.ok(find(docs(await template()), 'ValidatingAdmissionPolicy', 'sickbay-agent-guard'));
  });

  it('hands the ZooKeeper registries (digests included) to sickbay through a Secret, never in the pod spec', async () => {
    type Deploy = KubernetesObject & { spec: { template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }> }> } } } };
    const registries = [{ name: 'zk', connect: 'zk-0.zk:2181', digest: 'sickbay:s3cret' }];
    const r = await helm(['template', 'sickbay', chartDir, '--namespace', NS, '--set-json', `controllers.registries=${JSON.stringify(registries)}`]);
    assert.equal(r.code, 0, r.stderr);
    const all = docs(r.stdout);
    const secret = find(all, 'Secret', 'sickbay-registries') as KubernetesObject & { stringData: Record<string, string> };
    assert.deepEqual(JSON.parse(secret.stringData.registries!), registries);
    const env = (find(all, 'Deployment') as Deploy).spec.template.spec.containers[0]!.env;
    assert.deepEqual(env.find((e) => e.name === 'SICKBAY_REGISTRIES')?.valueFrom?.secretKeyRef, { name: 'sickbay-registries', key: 'registries' });
    assert.doesNotMatch(JSON.stringify(find(all, 'Deployment')), /s3cret/);
    const own = docs(await template({ 'controllers.registriesSecret': 'my-zk' }));
    assert.equal(find(own, 'Secret', 'sickbay-registries'), undefined);
    assert.equal((find(own, 'Deployment') as Deploy).spec.template.spec.containers[0]!.env.find((e) => e.name === 'SICKBAY_REGISTRIES')?.valueFrom?.secretKeyRef?.name, 'my-zk');
    const none = (find(docs(await template()), 'Deployment') as Deploy).spec.template.spec.containers[0]!.env;
    assert.equal(none.find((e) => e.name === 'SICKBAY_REGISTRIES'), undefined);
  });

  it('grants exactly the rules of src/core/rbac.ts, pods/exec with diagnostics off too (the liveness hold), webhook patching only when self-managed', async () => {
    const cm = docs(await template());
    assert.deepEqual(canon(find(cm, 'ClusterRole', 'sickbay')!.rules), canon(serveClusterRules()));
    assert.deepEqual(canon(find(cm, 'ClusterRole', 'sickbay-agent')!.rules), canon(agentClusterRules({ nodeCondition: false, checkpoints: false })), 'no nodes/status without a Node condition, no nodes/checkpoint without checkpoints');
    const withCondition = docs(await template({ 'agent.nodeCondition': 'SickbayNodeProblem' }));
    assert.deepEqual(canon(find(withCondition, 'ClusterRole', 'sickbay-agent')!.rules), canon(agentClusterRules({ nodeCondition: true, checkpoints: false })));
    const withCheckpoints = docs(await template({ 'agent.checkpoints.enabled': 'true' }));
    assert.deepEqual(canon(find(withCheckpoints, 'ClusterRole', 'sickbay-agent')!.rules), canon(agentClusterRules({ nodeCondition: false, checkpoints: true })));
    assert.deepEqual(canon(find(withCheckpoints, 'ClusterRole', 'sickbay')!.rules), canon(serveClusterRules()), 'checkpoints are never sickbay serve\'s to take');
    assert.deepEqual(canon(find(cm, 'Role', 'sickbay')!.rules), canon(SERVE_NAMESPACE_RULES));
    const sm = docs(await template({ 'certificates.mode': 'self-managed', 'controllers.diagnostics.enabled': 'false' }));
    assert.deepEqual(canon(find(sm, 'ClusterRole', 'sickbay')!.rules), canon(serveClusterRules({ caBundleSyncFor: 'sickbay' })));
    assert.ok(find(sm, 'ClusterRole', 'sickbay')!.rules.some((r: any) => r.resources.includes('pods/exec')), 'the liveness hold needs exec with diagnostics off');
    assert.deepEqual(canon(find(sm, 'Role', 'sickbay')!.rules), canon([...SERVE_NAMESPACE_RULES, ...servingSecretRules('sickbay-tls')]), 'the serving Secret, by name, only when sickbay generates it');
    const own = docs(await template({ 'certificates.mode': 'self-managed', 'certificates.selfManaged.existingSecret': 'corp-tls' }));
    assert.deepEqual(canon(find(own, 'Role', 'sickbay')!.rules), canon(SERVE_NAMESPACE_RULES));
    for (const all of [cm, sm]) {
      for (const role of all.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')) {
        assert.ok(!JSON.stringify(role.rules).includes('*'), `${role.metadata?.name} has a wildcard`);
      }
    }
  });

  it('the scene archive: its settings, credentials from a Secret (never in the pod spec), its CA mounted, and the reads a bundle needs granted only with it (issue 27)', async () => {
    const all = docs(await template({ 'controllers.archive.enabled': 'true', 'controllers.archive.endpoint': 'https://s3.example.com', 'controllers.archive.bucket': 'scenes', 'controllers.archive.credentialsSecret': 'scene-store', 'controllers.archive.caConfigMap': 'store-ca' }));
    const pod = (find(all, 'Deployment') as any).spec.template.spec;
    type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };
    const env = pod.containers[0]!.env as EnvVar[];
    const value = (n: string) => env.find((e) => e.name === n)?.value;
    assert.equal(value('SICKBAY_ARCHIVE_ENDPOINT'), 'https://s3.example.com');
    assert.equal(value('SICKBAY_ARCHIVE_BUCKET'), 'scenes');
    assert.equal(value('SICKBAY_ARCHIVE_PREFIX'), 'sickbay/');
    assert.equal(value('SICKBAY_ARCHIVE_MAX_DELAY'), '1h');
    assert.deepEqual(env.find((e) => e.name === 'SICKBAY_ARCHIVE_ACCESS_KEY_ID')?.valueFrom?.secretKeyRef, { name: 'scene-store', key: 'accessKeyId' });
    assert.deepEqual(env.find((e) => e.name === 'SICKBAY_ARCHIVE_SECRET_ACCESS_KEY')?.valueFrom?.secretKeyRef, { name: 'scene-store', key: 'secretAccessKey' });
    assert.equal(value('SICKBAY_ARCHIVE_CA_FILE'), '/etc/sickbay/archive-ca/ca.crt');
    assert.ok(pod.volumes.some((v: any) => v.name === 'archive-ca' && v.configMap?.name === 'store-ca'));
    assert.ok(pod.containers[0]!.volumeMounts.some((m: any) => m.name === 'archive-ca' && m.mountPath === '/etc/sickbay/archive-ca'));
    // What the chart sets, sickbay reads: the settings parse as its own configuration.
    const { readConfig } = await import('../../src/core/config.js');
    const parsed = readConfig({ ...Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!])), SICKBAY_ARCHIVE_ACCESS_KEY_ID: 'a', SICKBAY_ARCHIVE_SECRET_ACCESS_KEY: 'b' });
    assert.equal(parsed.archive?.store.bucket, 'scenes');
    assert.deepEqual(canon(find(all, 'ClusterRole', 'sickbay')!.rules), canon(serveClusterRules({ archive: true })));
    const off = docs(await template());
    assert.ok(!((find(off, 'Deployment') as any).spec.template.spec.containers[0]!.env as EnvVar[]).some((e) => e.name.startsWith('SICKBAY_ARCHIVE_')));
  });

  it('renders the webhook configurations src/webhook builds, and ships the CRD src/node builds', async () => {
    const strip = (o: Obj) => o.webhooks.map((w: any) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: undefined } }));
    const cm = docs(await template());
    const expectedOpts = { target: { service: { name: 'sickbay', namespace: NS } }, ownNamespace: NS, certManagerCertificate: `${NS}/sickbay-serving` };
    assert.deepEqual(JSON.parse(JSON.stringify(strip(find(cm, 'MutatingWebhookConfiguration')!))), JSON.parse(JSON.stringify(strip(mutatingWebhookConfiguration(expectedOpts) as Obj))));
    assert.deepEqual(JSON.parse(JSON.stringify(strip(find(cm, 'ValidatingWebhookConfiguration')!))), JSON.parse(JSON.stringify(strip(validatingWebhookConfiguration(expectedOpts) as Obj))));
    assert.equal(find(cm, 'MutatingWebhookConfiguration')!.metadata?.annotations?.['cert-manager.io/inject-ca-from'], `${NS}/sickbay-serving`);
    const withCrds = await helm(['template', 'sickbay', chartDir, '--namespace', NS, '--include-crds']);
    assert.deepEqual(find(docs(withCrds.stdout), 'CustomResourceDefinition'), JSON.parse(JSON.stringify(nodeHealthCrd())));
    // Self-managed: nothing secret is rendered, so every render is the same (GitOps tools
    // see no drift); sickbay makes the Secret in the cluster.
    const smYaml = await template({ 'certificates.mode': 'self-managed' });
    assert.equal(await template({ 'certificates.mode': 'self-managed' }), smYaml, 'two renders differ');
    const sm = docs(smYaml);
    assert.equal(find(sm, 'Secret', 'sickbay-tls'), undefined, 'no certificate made by helm template');
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) assert.equal(find(sm, kind)!.webhooks[0].clientConfig.caBundle, undefined);
    const env = Object.fromEntries((find(sm, 'Deployment') as any).spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    assert.equal(env.SICKBAY_TLS_SECRET, 'sickbay-tls');
    assert.equal(env.SICKBAY_TLS_DNS_NAMES, 'sickbay,sickbay.sickbay-system,sickbay.sickbay-system.svc,sickbay.sickbay-system.svc.cluster.local');
    assert.ok(!(find(sm, 'Deployment') as any).spec.template.spec.volumes.some((v: any) => v.secret), 'no Secret volume: the pod starts before the Secret exists');
  });

  it('the serve Deployment and the agent DaemonSet are shaped for production', async () => {
    const all = docs(await template());
    const d = find(all, 'Deployment')!;
    assert.equal(d.spec.replicas, 2);
    assert.ok(d.spec.template.spec.affinity.podAntiAffinity, 'replicas spread over nodes');
    assert.equal(find(all, 'PodDisruptionBudget')!.spec.minAvailable, 1);
    assert.equal(find(docs(await template({ replicas: '1' })), 'PodDisruptionBudget'), undefined, 'no PDB with one replica: it would block every drain');
    const c = d.spec.template.spec.containers[0];
    assert.equal(c.resources.limits.cpu, undefined, 'no CPU limit');
    assert.deepEqual(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    // Probes on a port of their own (issue 31): HTTPS load or its connection cap never fails one.
    assert.deepEqual([c.readinessProbe.httpGet.port, c.livenessProbe.httpGet.port], ['health', 'health']);
    assert.ok(c.env.some((e: any) => e.name === 'SICKBAY_HEALTH_PORT' && e.value === String(c.ports.find((p: any) => p.name === 'health').containerPort)));
    assert.ok(c.env.some((e: any) => e.name === 'SICKBAY_LEADER_ELECTION' && e.value === 'true'));
    const ds = find(all, 'DaemonSet')!;
    const pod = ds.spec.template.spec;
    assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }], 'runs on faulty (tainted) nodes too');
    assert.deepEqual(pod.volumes, [{ name: 'host-proc', hostPath: { path: '/proc', type: 'Directory' } }]);
    assert.deepEqual(pod.containers[0].volumeMounts, [{ name: 'host-proc', mountPath: '/host/proc', readOnly: true }]);
    assert.deepEqual(pod.containers[0].args, ['agent', '--node-name', '$(SICKBAY_NODE_NAME)']);
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux' }, 'agents on Linux nodes only');
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]));
    assert.equal(env.SICKBAY_SHIM_IMAGE, 'ghcr.io/sickbay-dev/sickbay-shim:0.1.0', 'injected pods pull the small shim image');
    assert.equal(env.SICKBAY_SHIM_PULL_SECRETS, '');
  });

  it("checkpoints (issue 30): off by default; on, the agent calls its node's kubelet, mounts only the kubelet's checkpoints folder, and is uid 0 with no capabilities", async () => {
    const off = find(docs(await template()), 'DaemonSet')!.spec.template.spec;
    assert.equal(off.containers[0].env.find((e: any) => e.name === 'SICKBAY_AGENT_KUBELET_API'), undefined);
    assert.equal(off.containers[0].securityContext.runAsNonRoot, true);
    const all = docs(await template({ 'agent.checkpoints.enabled': 'true', 'agent.checkpoints.kubeletRootDir': '/var/lib/kubelet/', 'controllers.checkpoint.timeout': '90s' }));
    const pod = find(all, 'DaemonSet')!.spec.template.spec;
    const c = pod.containers[0];
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]));
    assert.equal(env.SICKBAY_HOST_IP, 'status.hostIP');
    assert.equal(env.SICKBAY_AGENT_KUBELET_API, 'https://$(SICKBAY_HOST_IP):10250');
    assert.ok(c.env.findIndex((e: any) => e.name === 'SICKBAY_HOST_IP') < c.env.findIndex((e: any) => e.name === 'SICKBAY_AGENT_KUBELET_API'), 'defined before it is used');
    assert.equal(env.SICKBAY_AGENT_CHECKPOINT_DIR, '/var/lib/kubelet/checkpoints');
    assert.equal(env.SICKBAY_AGENT_KUBELET_INSECURE, 'false');
    assert.deepEqual(pod.volumes.find((v: any) => v.name === 'checkpoints'), { name: 'checkpoints', hostPath: { path: '/var/lib/kubelet/checkpoints', type: 'DirectoryOrCreate' } });
    assert.deepEqual(c.volumeMounts.find((m: any) => m.name === 'checkpoints'), { name: 'checkpoints', mountPath: '/var/lib/kubelet/checkpoints' });
    assert.deepEqual(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: false, runAsUser: 0, runAsGroup: 0, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
    const serve = find(all, 'Deployment')!.spec.template.spec.containers[0];
    assert.ok(serve.env.some((e: any) => e.name === 'SICKBAY_CHECKPOINT_TIMEOUT' && e.value === '90s'));
    // The agent's settings as the chart sets them are valid settings.
    const agentEnv: Record<string, string> = Object.fromEntries(c.env.filter((e: any) => typeof e.value === 'string').map((e: any) => [e.name, e.value]));
    agentEnv.SICKBAY_AGENT_KUBELET_API = 'https://10.0.0.7:10250';
    assert.equal(readConfig(agentEnv).agent.checkpoints.kubeletApi, 'https://10.0.0.7:10250');
  });

  it('takes the values charts usually take, and works as a dependency of an umbrella chart', async () => {
    const all = docs(await template({
      fullnameOverride: 'edge-sickbay', nameOverride: 'sb', 'shim.image.repository': 'registry.internal/sickbay-shim', 'image.tag': '0.1.1',
    }, [
      '--set-json', 'global={"imageRegistry":"registry.internal","storageClass":"fast"}',
      '--set-json', 'podAnnotations={"prometheus.io/scrape":"false"}',
      '--set-json', 'podLabels={"team":"platform"}',
      '--set-json', 'extraVolumes=[{"name":"ca","configMap":{"name":"corp-ca"}}]',
      '--set-json', 'extraVolumeMounts=[{"name":"ca","mountPath":"/etc/corp-ca","readOnly":true}]',
      '--set-json', 'shim.imagePullSecrets=["corp-registry","mirror"]',
    ]));
    const d = find(all, 'Deployment') as any;
    const ds = find(all, 'DaemonSet') as any;
    assert.equal(d.metadata.name, 'edge-sickbay');
    assert.equal(ds.metadata.name, 'edge-sickbay-agent');
    assert.equal(d.metadata.labels['app.kubernetes.io/name'], 'sb');
    for (const w of [d, ds]) {
      assert.equal(w.spec.template.metadata.labels.team, 'platform');
      assert.equal(w.spec.template.metadata.annotations['prometheus.io/scrape'], 'false');
      assert.equal(w.spec.selector.matchLabels.team, undefined, 'pod labels stay out of the selector (it cannot change on upgrade)');
    }
    assert.ok(d.spec.template.spec.volumes.some((v: any) => v.name === 'ca' && v.configMap.name === 'corp-ca'));
    assert.ok(d.spec.template.spec.containers[0].volumeMounts.some((m: any) => m.mountPath === '/etc/corp-ca'));
    const env = Object.fromEntries(d.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    assert.equal(env.SICKBAY_SHIM_IMAGE, 'registry.internal/sickbay-shim:0.1.1', 'the shim follows image.tag');
    assert.equal(env.SICKBAY_SHIM_PULL_SECRETS, 'corp-registry,mirror');
    assert.equal((find(all, 'Service') as any).metadata.name, 'edge-sickbay');
    const m = find(all, 'MutatingWebhookConfiguration')!;
    assert.equal(m.webhooks[0].clientConfig.service.name, 'edge-sickbay', 'the webhooks call the renamed Service');
    // As a dependency: an umbrella chart passes its globals and a subchart block.
    const umbrella = mkdtempSync(path.join(tmpdir(), 'sickbay-umbrella-'));
    try {
      mkdirSync(path.join(umbrella, 'charts'));
      cpSync(chartDir, path.join(umbrella, 'charts', 'sickbay'), { recursive: true });
      writeFileSync(path.join(umbrella, 'Chart.yaml'), 'apiVersion: v2\nname: platform\nversion: 1.0.0\ndependencies:\n  - name: sickbay\n    version: 0.1.0\n');
      writeFileSync(path.join(umbrella, 'values.yaml'), 'global:\n  imageRegistry: registry.internal\nsickbay:\n  replicas: 3\n');
      const r = await helm(['template', 'platform', umbrella, '--namespace', NS]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(find(docs(r.stdout), 'Deployment')!.spec.replicas, 3);
    } finally {
      rmSync(umbrella, { recursive: true, force: true });
    }
  });

  it('helm package makes the archive a registry takes, and it renders as the folder does', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'sickbay-package-'));
    try {
      const r = await helm(['package', chartDir, '--destination', out]);
      assert.equal(r.code, 0, r.stderr);
      const archive = path.join(out, 'sickbay-0.1.0.tgz');
      assert.ok(existsSync(archive), r.stdout);
      const listing = execFileSync('tar', ['-tzf', archive], { encoding: 'utf8' }).split('\n');
      for (const f of ['sickbay/Chart.yaml', 'sickbay/values.schema.json', 'sickbay/dashboards/sickbay.json', 'sickbay/crds/nodehealths.sickbay.io.yaml']) assert.ok(listing.includes(f), `${f} in the archive`);
      const fromArchive = await helm(['template', 'sickbay', archive, '--namespace', NS]);
      assert.equal(fromArchive.code, 0, fromArchive.stderr);
      assert.equal(fromArchive.stdout, await template());
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("the Grafana dashboard ships as the sidecar's ConfigMap, and every query names metrics sickbay exports", async () => {
    const cm: any = find(docs(await template({ 'monitoring.grafanaDashboard.enabled': 'true', 'monitoring.grafanaDashboard.namespace': 'monitoring' })), 'ConfigMap', 'sickbay-dashboard')!;
    assert.equal(cm.metadata.namespace, 'monitoring');
    assert.equal(cm.metadata.labels.grafana_dashboard, '1');
    const dashboard = JSON.parse(cm.data['sickbay.json']) as { uid: string; panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    assert.equal(dashboard.uid, 'sickbay');
    const exported = await exportedMetrics();
    assert.ok(dashboard.panels.length >= 10, `${dashboard.panels.length} panels`);
    for (const p of dashboard.panels) {
      for (const { expr } of p.targets) {
        const names = (expr.match(/sickbay_[a-z_]+/g) ?? []).map((n) => n.replace(/_(bucket|sum|count)$/, ''));
        assert.ok(names.length > 0, `${p.title}: ${expr}`);
        for (const n of names) assert.ok(exported.has(n), `panel ${p.title} uses ${n}, which sickbay does not export`);
      }
    }
  });

  it("follows the conventions charts are expected to: digests, spread, priority, per-component labels, env and args, a PDB of either kind, a NetworkPolicy, a checksum, helm test", async () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const all = docs(await template({ 'image.digest': digest, 'shim.image.digest': `sha256:${'b'.repeat(64)}`, priorityClassName: 'platform-critical', 'podDisruptionBudget.maxUnavailable': '1' }, [
      '--set-json', 'topologySpreadConstraints=[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"ScheduleAnyway"}]',
      '--set-json', 'podLabels={"team":"platform"}', '--set-json', 'agent.podLabels={"role":"node-agent"}',
      '--set-json', 'extraEnv=[{"name":"A","value":"1"}]', '--set-json', 'extraArgs=["--context=x"]',
      '--set-json', 'agent.extraEnv=[{"name":"B","value":"2"}]', '--set-json', 'agent.extraArgs=["--context=y"]',
    ]));
    const serve = find(all, 'Deployment')!.spec.template;
    const agent = find(all, 'DaemonSet')!.spec.template;
    assert.equal(serve.spec.containers[0].image, `ghcr.io/sickbay-dev/sickbay@${digest}`);
    assert.equal(agent.spec.containers[0].image, `ghcr.io/sickbay-dev/sickbay@${digest}`);
    assert.equal(serve.spec.containers[0].env.find((e: any) => e.name === 'SICKBAY_SHIM_IMAGE').value, `ghcr.io/sickbay-dev/sickbay-shim@sha256:${'b'.repeat(64)}`);
    assert.equal(serve.spec.topologySpreadConstraints[0].topologyKey, 'topology.kubernetes.io/zone');
    assert.equal(serve.spec.priorityClassName, 'platform-critical');
    assert.equal(serve.metadata.labels.team, 'platform');
    assert.deepEqual([agent.metadata.labels.team, agent.metadata.labels.role], ['platform', 'node-agent']);
    assert.equal(find(all, 'DaemonSet')!.spec.selector.matchLabels.role, undefined, 'pod labels never in a selector');
    assert.deepEqual(serve.spec.containers[0].args, ['serve', '--context=x']);
    assert.deepEqual(agent.spec.containers[0].args.slice(-1), ['--context=y']);
    assert.ok(serve.spec.containers[0].env.some((e: any) => e.name === 'A') && !serve.spec.containers[0].env.some((e: any) => e.name === 'B'));
    assert.ok(agent.spec.containers[0].env.some((e: any) => e.name === 'B') && !agent.spec.containers[0].env.some((e: any) => e.name === 'A'));
    assert.deepEqual(Object.keys(find(all, 'PodDisruptionBudget')!.spec).sort(), ['maxUnavailable', 'selector'], 'maxUnavailable alone, no minAvailable beside it');
    // helm test: a hook Pod that calls the webhook with its CA and reads the CRD.
    const test = all.find((o) => o.kind === 'Pod' && o.metadata?.annotations?.['helm.sh/hook'] === 'test')!;
    assert.ok(test, 'a helm test Pod');
    assert.match(test.spec.containers[0].env.find((e: any) => e.name === 'WEBHOOK').value, /^https:\/\/sickbay\.sickbay-system\.svc:443\/mutate$/);
    assert.match(test.spec.containers[0].command.join(' '), /nodehealths/);
    // The NetworkPolicy: off by default; on, the API server's CIDRs and the given peers.
    assert.equal(find(docs(await template()), 'NetworkPolicy'), undefined);
    const np = find(docs(await template({ 'networkPolicy.enabled': 'true' }, ['--set-json', 'networkPolicy.apiServerCIDRs=["10.0.0.0/24"]', '--set-json', 'networkPolicy.from=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]'])), 'NetworkPolicy')!;
    // client-node's model names the field _from.
    assert.deepEqual(np.spec.ingress[0].from ?? np.spec.ingress[0]._from, [{ ipBlock: { cidr: '10.0.0.0/24' } }, { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    // A changed registries Secret restarts the pods.
    const checksum = async (hosts: string) => find(docs(await template({}, ['--set-json', `controllers.registries=[{"name":"zk","connect":"${hosts}"}]`])), 'Deployment')!.spec.template.metadata.annotations['checksum/registries'];
    assert.notEqual(await checksum('zk-a:2181'), await checksum('zk-b:2181'));
    // The invalid ones are refused by the schema.
    for (const [set, message] of [
      ['image.digest=latest', /at '\/image\/digest'/],
      ['podDisruptionBudget.maxUnavailable=lots', /at '\/podDisruptionBudget\/maxUnavailable'/],
      ['networkPolicy.enabled=true', /at '\/networkPolicy\/apiServerCIDRs': minItems/],
      ['monitoring.runbookBaseUrl=docs', /at '\/monitoring\/runbookBaseUrl'/],
    ] as Array<[string, RegExp]>) {
      const r = await helm(['template', 'sickbay', chartDir, '--set', set]);
      assert.notEqual(r.code, 0, set);
      assert.match(r.stderr, message, set);
    }
  });

  it("a clear failure when cert-manager's or the Prometheus Operator's CRDs are missing but their mode is chosen", async () => {
    const bare = await startCluster({ nodes: 1 });
    try {
      const kubeconfig = { KUBECONFIG: bare.cp.kubeconfigPath };
      const install = (...set: string[]) => helm(['install', 'sickbay', chartDir, '--namespace', NS, '--create-namespace', '--dry-run=server', ...set.flatMap((v) => ['--set', v])], kubeconfig);
      const cm = await install();
      assert.notEqual(cm.code, 0);
      assert.match(cm.stderr, /certificates\.mode=cert-manager, but this cluster does not serve cert-manager\.io\/v1: install cert-manager first/);
      const prom = await install('certificates.mode=self-managed', 'monitoring.prometheusRule.enabled=true');
      assert.notEqual(prom.code, 0);
      assert.match(prom.stderr, /this cluster does not serve monitoring\.coreos\.com\/v1: install the Prometheus Operator/);
      const ok = await install('certificates.mode=self-managed');
      assert.equal(ok.code, 0, ok.stderr);
    } finally {
      await bare.stop();
    }
    // With them (this cluster has the CRDs), the same install is fine.
    const withCrds = await helm(['install', 'sickbay', chartDir, '--namespace', NS, '--create-namespace', '--dry-run=server', '--set', 'monitoring.prometheusRule.enabled=true'], { KUBECONFIG: t.cp.kubeconfigPath });
    assert.equal(withCrds.code, 0, withCrds.stderr);
  });

  it('every rendered object is accepted by the API server (server-side dry-run), in both certificate modes', async () => {
    await createNamespace(t.core, NS);
    const api = KubernetesObjectApi.makeApiClient(t.kc);
    for (const mode of ['cert-manager', 'self-managed']) {
      const all = docs(await template({ 'certificates.mode': mode, ...allMonitoring, 'nodes.minHealthyGroupLabel': 'karpenter.sh/nodepool' }, [
        '--set-json', 'podAnnotations={"example.com/owner":"platform"}', '--set-json', 'podLabels={"team":"platform"}',
        '--set-json', 'extraVolumes=[{"name":"ca","configMap":{"name":"corp-ca"}}]', '--set-json', 'extraVolumeMounts=[{"name":"ca","mountPath":"/etc/corp-ca","readOnly":true}]',
        '--set-json', 'shim.imagePullSecrets=["corp-registry"]',
      ]));
      assert.ok(all.length >= 15, `${mode}: ${all.length} objects`);
      // Hooks (the helm test Pod) are made by `helm test`, after the install.
      for (const obj of all.filter((o) => !o.metadata?.annotations?.['helm.sh/hook'])) {
        await api.create(obj, undefined, 'All').catch((err) => assert.fail(`${mode}: ${obj.kind}/${obj.metadata?.name} refused: ${err?.body ?? err}`));
      }
    }
  });

  it("every alert of the PrometheusRule names metrics sickbay exports", async () => {
    const rule = docs(await template(allMonitoring)).find((o) => o.kind === 'PrometheusRule') as KubernetesObject & {
      spec: { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
    };
    const exported = await exportedMetrics();
    assert.ok(rule.spec.groups[0]!.rules.some((r) => r.alert === 'SickbayAbsent' && r.expr.startsWith('absent(')), 'an alert when sickbay is gone altogether');
    const rules = rule.spec.groups.flatMap((g) => g.rules);
    assert.ok(rules.length >= 6, `${rules.length} alerts`);
    for (const a of ['SickbayWebhookErrors', 'SickbayWebhookSlow', 'SickbayUninjectedPods']) assert.ok(rules.some((r) => r.alert === a), `alert ${a} (webhook errors, latency, fail-open)`);
    const runbooks = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
    for (const r of rules as Array<{ alert: string; expr: string; annotations: Record<string, string> }>) {
      assert.ok(r.annotations.summary && r.annotations.description, `${r.alert}: a summary and a description`);
      assert.equal(r.annotations.runbook_url, `https://github.com/sickbay-dev/sickbay/blob/main/docs/operations.md#${r.alert.toLowerCase()}`);
      assert.ok(runbooks.includes(`\n### ${r.alert}\n`), `${r.alert}: a runbook in docs/operations.md`);
      // A histogram's series are its name with _bucket, _sum, _count.
      const names = (r.expr.match(/sickbay_[a-z_]+/g) ?? []).map((n) => (exported.has(n) ? n : n.replace(/_(bucket|sum|count)$/, '')));
      assert.ok(names.length > 0, `${r.alert}: ${r.expr}`);
      for (const n of names) assert.ok(exported.has(n), `${r.alert} uses ${n}, which sickbay does not export`);
    }
  });

  it("Prometheus's own rule engine: the rules load, 'sickbay absent' fires when nothing is scraped, and not while sickbay is", async () => {
    const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((f) => existsSync(f)) ?? assert.fail('promtool not found: apt-get install prometheus (Debian), whose promtool runs the PrometheusRule here');
    const rule = docs(await template(allMonitoring)).find((o) => o.kind === 'PrometheusRule')!;
    const dir = mkdtempSync(path.join(tmpdir(), 'sickbay-rules-'));
    try {
      writeFileSync(path.join(dir, 'rules.yaml'), yaml.dump({ groups: rule.spec.groups }));
      const check = spawnSync(promtool, ['check', 'rules', path.join(dir, 'rules.yaml')], { encoding: 'utf8' });
      assert.equal(check.status, 0, check.stdout + check.stderr);
      // The agent writes its exposition by hand: Prometheus's own linter reads it.
      const exposition = spawnSync(promtool, ['check', 'metrics'], { encoding: 'utf8', input: agentMetricsText({ heartbeats: 5, heartbeatErrors: 1, checks: [{ name: 'kubelet', ok: true }, { name: 'network', ok: false }] }) });
      assert.equal(exposition.status, 0, `the agent's /metrics: ${exposition.stdout}${exposition.stderr}`);
      const ns = { namespace: NS };
      writeFileSync(path.join(dir, 'tests.yaml'), yaml.dump({
        rule_files: ['rules.yaml'],
        evaluation_interval: '1m',
        tests: [
          // Nothing scraped at all: only the absent alerts fire, after their 10 minutes.
          {
            interval: '1m',
            input_series: [],
            alert_rule_test: [
              { eval_time: '9m', alertname: 'SickbayAbsent', exp_alerts: [] },
              { eval_time: '11m', alertname: 'SickbayAbsent', exp_alerts: [{ exp_labels: { severity: 'critical', ...ns }, exp_annotations: rule.spec.groups[0].rules.find((r: any) => r.alert === 'SickbayAbsent').annotations }] },
              { eval_time: '11m', alertname: 'SickbayAgentsAbsent', exp_alerts: [{ exp_labels: { severity: 'warning', ...ns }, exp_annotations: rule.spec.groups[0].rules.find((r: any) => r.alert === 'SickbayAgentsAbsent').annotations }] },
            ],
          },
          // sickbay and its agents scraped, a leader: quiet. No leader for 5 minutes: that alert.
          {
            interval: '1m',
            input_series: [
              { series: `sickbay_leader{namespace="${NS}",pod="sickbay-a"}`, values: '1x10 0x10' },
              { series: `sickbay_agent_heartbeats_total{namespace="${NS}",result="ok"}`, values: '0+6x20' },
            ],
            alert_rule_test: [
              { eval_time: '10m', alertname: 'SickbayAbsent', exp_alerts: [] },
              { eval_time: '10m', alertname: 'SickbayAgentsAbsent', exp_alerts: [] },
              { eval_time: '10m', alertname: 'SickbayNoLeader', exp_alerts: [] },
              { eval_time: '17m', alertname: 'SickbayNoLeader', exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: rule.spec.groups[0].rules.find((r: any) => r.alert === 'SickbayNoLeader').annotations }] },
            ],
          },
          // The webhook answering errors (fires after 5 minutes), and pods escaping it (fail-open, after 15).
          {
            interval: '1m',
            input_series: [
              { series: `sickbay_admission_requests_total{namespace="${NS}",pod="sickbay-a",webhook="mutate",outcome="error"}`, values: '0+1x25' },
              { series: `sickbay_admission_requests_total{namespace="${NS}",pod="sickbay-a",webhook="mutate",outcome="patched"}`, values: '0+100x25' },
              { series: `sickbay_uninjected_pods{namespace="${NS}",pod="sickbay-a"}`, values: '0x2 3x25' },
            ],
            alert_rule_test: [
              { eval_time: '3m', alertname: 'SickbayWebhookErrors', exp_alerts: [] },
              { eval_time: '12m', alertname: 'SickbayWebhookErrors', exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: rule.spec.groups[0].rules.find((r: any) => r.alert === 'SickbayWebhookErrors').annotations }] },
              { eval_time: '12m', alertname: 'SickbayUninjectedPods', exp_alerts: [] },
              { eval_time: '20m', alertname: 'SickbayUninjectedPods', exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: rule.spec.groups[0].rules.find((r: any) => r.alert === 'SickbayUninjectedPods').annotations }] },
            ],
          },
          // A leader's controllers failing (the term resigned): an alert at once, quiet before.
          {
            interval: '1m',
            input_series: [{ series: `sickbay_leader_failed_terms_total{namespace="${NS}",pod="sickbay-a",runnable="controllers"}`, values: '0x5 1x20' }],
            alert_rule_test: [
              { eval_time: '4m', alertname: 'SickbayLeaderWorkFailing', exp_alerts: [] },
              { eval_time: '7m', alertname: 'SickbayLeaderWorkFailing', exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: rule.spec.groups[0].rules.find((r: any) => r.alert === 'SickbayLeaderWorkFailing').annotations }] },
            ],
          },
          // An agent away (AgentDown, issue 26): not an isolation, but an alert after 10 minutes.
          {
            interval: '1m',
            input_series: [{ series: `sickbay_nodes{namespace="${NS}",pod="sickbay-a",state="agent-down"}`, values: '0x2 1x15' }],
            alert_rule_test: [
              { eval_time: '8m', alertname: 'SickbayAgentDown', exp_alerts: [] },
              { eval_time: '14m', alertname: 'SickbayAgentDown', exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: rule.spec.groups[0].rules.find((r: any) => r.alert === 'SickbayAgentDown').annotations }] },
            ],
          },
        ],
      }));
      const run = spawnSync(promtool, ['test', 'rules', path.join(dir, 'tests.yaml')], { encoding: 'utf8' });
      assert.equal(run.status, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /SUCCESS/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('installed into the local control plane (self-managed certificates)', () => {
    let dir: string;
    let port: number;
    let running: ServeHandle | undefined;
    const admission = () => t.kc.makeApiClient(AdmissionregistrationV1Api);

    const startServe = async () => {
      const sa = await t.cp.serviceAccountKubeConfig(NS, 'sickbay'); // the chart's ServiceAccount and RBAC
      // As the chart's Deployment sets them (its Role lets this identity make the Secret).
      const config = readConfig({
        SICKBAY_TLS_SECRET: 'sickbay-tls',
        SICKBAY_TLS_DNS_NAMES: 'sickbay,sickbay.sickbay-system.svc',
        SICKBAY_TLS_IP_ADDRESSES: '127.0.0.1',
        SICKBAY_PORT: String(port),
        SICKBAY_BIND_ADDRESS: '127.0.0.1',
        SICKBAY_TLS_CERT: path.join(dir, 'tls.crt'),
        SICKBAY_TLS_KEY: path.join(dir, 'tls.key'),
        SICKBAY_TLS_CA: path.join(dir, 'ca.crt'),
        SICKBAY_CA_BUNDLE_SYNC: 'true',
        SICKBAY_WEBHOOK_CONFIGURATION: 'sickbay',
        SICKBAY_NAMESPACE: NS,
        SICKBAY_SERVICE_ACCOUNT: 'sickbay',
        SICKBAY_LEASE_NAME: 'sickbay-controller',
        SICKBAY_DRAIN: '0s',
        SICKBAY_LOG_LEVEL: process.env.SICKBAY_TEST_LOG_LEVEL ?? 'warn',
      });
      running = await serve(config, createLogger(config.logLevel), { kubeConfig: sa, components: (ctx) => buildComponents(config, sa, ctx) });
    };

    before(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'sickbay-chart-'));
      [port] = (await freePorts(1)) as [number];
      const r = await helm(
        [
          'install', 'sickbay', chartDir, '--namespace', NS, '--create-namespace', '--wait=false',
          '--set', 'certificates.mode=self-managed',
          '--set', `webhook.url=https://127.0.0.1:${port}`,
          '--set', 'certificates.selfManaged.ipAddresses={127.0.0.1}',
          '--set', 'controllers.diagnostics.enabled=false',
          '--set', 'agent.nodeCondition=SickbayNodeProblem',
        ],
        { KUBECONFIG: t.cp.kubeconfigPath },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Emergency exit/);
    });
    after(async () => {
      await running?.shutdown();
      rmSync(dir, { recursive: true, force: true });
    });

    it('a local sickbay serve makes its certificate in the cluster, the webhooks reach it, and it puts back a CA bundle that went wrong', async () => {
      assert.equal((await admission().readMutatingWebhookConfiguration({ name: 'sickbay' })).webhooks![0]!.clientConfig.caBundle, undefined, 'installed without a CA bundle');
      await startServe();
      const secret = await t.core.readNamespacedSecret({ name: 'sickbay-tls', namespace: NS });
      const ca = secret.data!['ca.crt']!;
      const bundle = async () => (await admission().readMutatingWebhookConfiguration({ name: 'sickbay' })).webhooks![0]!.clientConfig.caBundle;
      await waitFor('the CA bundle filled in from the Secret sickbay made', async () => (await bundle()) === ca, { timeoutMs: 20_000 });
      const wrong = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');
      await admission().patchMutatingWebhookConfiguration(
        { name: 'sickbay', body: [{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: wrong }] },
      );
      // A restart (a new replica, a rollout) keeps the same certificate.
      await running!.shutdown();
      await startServe();
      await waitFor('the CA bundle restored', async () => (await bundle()) === ca, { timeoutMs: 20_000 });
      assert.equal((await t.core.readNamespacedSecret({ name: 'sickbay-tls', namespace: NS })).metadata!.resourceVersion, secret.metadata!.resourceVersion, 'the Secret unchanged by the restart');
      await createNamespace(t.core, 'shop', { 'sickbay.io/injection': 'enabled' });
      const pod = await waitFor('a pod injected through the chart\'s webhook', async () => {
        const p = await t.core.createNamespacedPod({ namespace: 'shop', body: { metadata: { generateName: 'web-' }, spec: { containers: [{ name: 'web', image: 'x', command: ['/app'] }] } } });
        return p.metadata?.annotations?.['sickbay.io/injected'] === 'true' ? p : undefined;
      }, { timeoutMs: 20_000, intervalMs: 500 });
      assert.equal(pod.spec!.containers[0]!.command![0], '/sickbay/bin/supervise');
    });

    it('replicas starting together make one Secret; a serving certificate late in its life is renewed once, from the same CA', async () => {
      const log = createLogger('warn');
      const o = (d: string) => ({ namespace: NS, name: 'race-tls', dnsNames: ['race.sickbay-system.svc'], ipAddresses: [], validityDays: 3, files: { cert: path.join(d, 'tls.crt'), key: path.join(d, 'tls.key'), ca: path.join(d, 'ca.crt') } });
      const dirs = [0, 1, 2].map(() => mkdtempSync(path.join(dir, 'replica-')));
      const sa = await t.cp.serviceAccountKubeConfig(NS, 'sickbay');
      // Three replicas of a chart whose Role names this Secret: as an admin here, the race is the point.
      const results = await Promise.all(dirs.map((d) => ensureServingSecret(t.kc, o(d), log)));
      assert.deepEqual(results.map((r) => r.action).sort(), ['created', 'kept', 'kept']);
      const files = (d: string) => ['tls.crt', 'tls.key', 'ca.crt'].map((f) => readFileSync(path.join(d, f), 'utf8'));
      assert.deepEqual(files(dirs[1]!), files(dirs[0]!));
      assert.deepEqual(files(dirs[2]!), files(dirs[0]!));
      // A serving certificate in the last third of its life (2 minutes, with the 5 minutes
      // it is backdated), from the same CA: two replicas check together, one renews.
      const secret = await t.core.readNamespacedSecret({ name: 'race-tls', namespace: NS });
      const b = (k: string) => Buffer.from(secret.data![k]!, 'base64').toString();
      const ending = issueCertificate({ certPem: b('ca.crt'), keyPem: b('ca.key'), notAfter: new Date(Date.now() + 86_400_000) }, { commonName: 'race', dnsNames: ['race.sickbay-system.svc'], usages: ['server'], validityDays: 2 / 1440, backdateMs: 5 * 60_000 });
      await t.core.replaceNamespacedSecret({ name: 'race-tls', namespace: NS, body: { ...secret, data: { ...secret.data, 'tls.crt': Buffer.from(ending.certPem).toString('base64'), 'tls.key': Buffer.from(ending.keyPem).toString('base64') } } });
      const renewed = await Promise.all(dirs.slice(0, 2).map((d) => ensureServingSecret(t.kc, o(d), log)));
      assert.deepEqual(renewed.map((r) => r.action).sort(), ['kept', 'renewed']);
      assert.deepEqual(files(dirs[1]!), files(dirs[0]!), 'both serve the renewed certificate');
      assert.notEqual(files(dirs[0]!)[0], files(dirs[2]!)[0], 'a new serving certificate');
      assert.equal(files(dirs[0]!)[2], files(dirs[2]!)[2], 'signed by the same CA: the webhooks keep trusting it');
      // The chart's identity may not touch a Secret of another name.
      await assert.rejects(ensureServingSecret(sa, o(dirs[0]!), log), /cannot read Secret sickbay-system\/race-tls: 403/);
    });

    scenario("sickbay's ServiceAccount reaching beyond its job", {
      title: "sickbay's own identity is refused beyond its job: pods outside opted-in namespaces, exec in kube-system, a foreign pod template, a foreign taint",
      load: 'the chart installed (scope policies on), exec allowed by RBAC',
      fault: "requests as sickbay's ServiceAccount: exec, delete, evict, patch outside opted-in namespaces; exec of other commands; owner references and finalizers; foreign template, annotation, replicas; a Deployment in kube-system; foreign taint, label, cordon; an Event in kube-system",
      outcome: 'every one refused by the API server; its own writes allowed',
    }, async (fig) => {
      const { rawApiRequest } = await import('../support/cluster.js');
      const asSickbay = await t.cp.serviceAccountKubeConfig(NS, 'sickbay');
      // As with diagnostics on: sickbay may exec (RBAC), the policy says where.
      await t.kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
        body: { metadata: { name: 'test-sickbay-exec' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'test-sickbay-exec' }, subjects: [{ kind: 'ServiceAccount', name: 'sickbay', namespace: NS }] },
      });
      await t.kc.makeApiClient(RbacAuthorizationV1Api).createClusterRole({ body: { metadata: { name: 'test-sickbay-exec' }, rules: [{ apiGroups: [''], resources: ['pods/exec'], verbs: ['get', 'create'] }] } });
      await createNamespace(t.core, 'shop', { 'sickbay.io/injection': 'enabled' }).catch(() => undefined);
      const spec = { nodeName: 'kwok-node-0', containers: [{ name: 'c', image: 'x', command: ['/c'] }] };
      for (const [namespace, name] of [['kube-system', 'system-pod'], ['default', 'plain-pod'], ['shop', 'shop-pod']]) {
        await t.core.createNamespacedPod({ namespace: namespace!, body: { metadata: { name: name!, labels: { 'sickbay.io/inject': 'false' } }, spec } });
      }
      const as = (method: string, path: string, body?: unknown, type = 'application/merge-patch+json') => rawApiRequest(asSickbay, method, path, body, { 'content-type': type });
      let last = '';
      await waitFor('the scope policies in force', async () => {
        const r = await as('DELETE', '/api/v1/namespaces/kube-system/pods/system-pod?dryRun=All');
        last = `${r.status} ${r.body}`;
        return r.status === 403;
      }, { timeoutMs: 20_000, intervalMs: 250 }).catch((e) => assert.fail(`${e.message}; last answer: ${last}`));

      let refusals = 0;
      const refused = async (what: string, r: { status: number; body: string }, policy: RegExp) => {
        assert.equal(r.status, 403, `${what}: ${r.body}`);
        assert.match(r.body, policy, what);
        refusals++;
      };
      const pods = /sickbay-scope-pods.*sickbay acts only on pods in namespaces labelled sickbay.io\/injection=enabled/;
      await refused('delete in kube-system', await as('DELETE', '/api/v1/namespaces/kube-system/pods/system-pod'), pods);
      await refused('patch in default', await as('PATCH', '/api/v1/namespaces/default/pods/plain-pod', { metadata: { labels: { x: 'y' } } }), pods);
      await refused('exec in kube-system', await as('POST', '/api/v1/namespaces/kube-system/pods/system-pod/exec?command=id&stdout=true&container=c'), pods);
      await refused('evict in default', await as('POST', '/api/v1/namespaces/default/pods/plain-pod/eviction', { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'plain-pod', namespace: 'default' } }, 'application/json'), pods);
      // In an opted-in namespace the same writes pass the policy.
      assert.equal((await as('PATCH', '/api/v1/namespaces/shop/pods/shop-pod', { metadata: { labels: { x: 'y' } } })).status, 200);
      // There, exec of the shim's own commands only (issue 31): not a shell of sickbay's choosing.
      const exec = (command: string[]) => as('POST', `/api/v1/namespaces/shop/pods/shop-pod/exec?${command.map((c) => `command=${encodeURIComponent(c)}`).join('&')}&stdout=true&container=c`);
      const execs = /sickbay-scope-pods.*sickbay may exec only the shim's own commands/;
      await refused('exec of id in an opted-in namespace', await exec(['id']), execs);
      await refused('exec of a shell', await exec(['/sickbay/bin/busybox', 'sh', '-c', 'cat /var/run/secrets/kubernetes.io/serviceaccount/token']), execs);
      await refused('a dump script with arguments of its choosing', await exec(['sh', '-c', 'exec "$0" "$@"', '/bin/sh', '-c', 'id']), execs);
      for (const allowed of [['/sickbay/bin/probe', '--hold'], ['sh', '-c', 'exec sh "${SICKBAY_DIR:-/sickbay}/bin/diagnose" "$@"', 'diagnose', '--heap'], ['sh', '-c', 'exec "$0" "$@"', '/app/dump.sh']]) {
        assert.notEqual((await exec(allowed)).status, 403, `exec of ${allowed.join(' ')} is not refused`);
      }
      // In its own namespace one exec only: an agent's busybox reading a checkpoint archive (the scene archive's; issue 30).
      for (const [name, pod] of [['agent', 'sickbay-agent-x7k2p'], ['serve', 'sickbay-5d8f9c-abcde']] as const) {
        await t.core.createNamespacedPod({ namespace: NS, body: { metadata: { name: pod, labels: { 'sickbay.io/inject': 'false' } }, spec } }).catch(() => assert.fail(`the ${name} pod`));
      }
      const execIn = (pod: string, command: string[]) => as('POST', `/api/v1/namespaces/${NS}/pods/${pod}/exec?${command.map((c) => `command=${encodeURIComponent(c)}`).join('&')}&stdout=true&container=c`);
      const read = (file: string) => ['/opt/sickbay/shim/busybox', 'cat', '--', file];
      const archive = '/var/lib/kubelet/checkpoints/checkpoint-shop-pod_shop-c-2026-12-07T10:00:00Z.tar';
      const ownNs = /sickbay-scope-pods.*sickbay acts only on pods in namespaces labelled/;
      await refused('a read of another file through an agent', await execIn('sickbay-agent-x7k2p', read('/etc/shadow')), ownNs);
      await refused('a read out of the checkpoints folder by ..', await execIn('sickbay-agent-x7k2p', read('/var/lib/kubelet/checkpoints/../config.yaml')), ownNs);
      await refused('a checkpoint read in a pod not an agent', await execIn('sickbay-5d8f9c-abcde', read(archive)), ownNs);
      await refused('a shell in an agent', await execIn('sickbay-agent-x7k2p', ['/opt/sickbay/shim/busybox', 'sh', '-c', 'cat /host/proc/1/environ']), ownNs);
      assert.notEqual((await execIn('sickbay-agent-x7k2p', read(archive))).status, 403, 'an agent\'s read of a checkpoint archive is not refused');
      // Never a pod's owner references or finalizers: a dangling owner gets it garbage-collected.
      const ownedBy = { metadata: { ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'gone', uid: '00000000-0000-0000-0000-000000000000' }] } };
      await refused('an owner reference on a pod', await as('PATCH', '/api/v1/namespaces/shop/pods/shop-pod', ownedBy), /sickbay may not change the owner references or finalizers of pod/);
      await refused('a finalizer on a pod', await as('PATCH', '/api/v1/namespaces/shop/pods/shop-pod', { metadata: { finalizers: ['example.com/hold'] } }), /sickbay may not change the owner references or finalizers of pod/);

      await t.apps.createNamespacedDeployment({
        namespace: 'shop',
        body: { metadata: { name: 'cart' }, spec: { replicas: 0, selector: { matchLabels: { app: 'cart' } }, template: { metadata: { labels: { app: 'cart' } }, spec: { containers: [{ name: 'c', image: 'x', command: ['/c'] }] } } } },
      });
      const deployments = /sickbay-scope-deployments.*only its annotation sickbay.io\/avoid-nodes/;
      await refused('a foreign template', await as('PATCH', '/apis/apps/v1/namespaces/shop/deployments/cart', { spec: { template: { spec: { containers: [{ name: 'c', image: 'evil' }] } } } }), deployments);
      await refused('a foreign annotation', await as('PATCH', '/apis/apps/v1/namespaces/shop/deployments/cart', { metadata: { annotations: { owner: 'mallory' } } }), deployments);
      await refused('replicas', await as('PATCH', '/apis/apps/v1/namespaces/shop/deployments/cart', { spec: { replicas: 5 } }), deployments);
      await refused('an owner reference on a Deployment', await as('PATCH', '/apis/apps/v1/namespaces/shop/deployments/cart', ownedBy), deployments);
      await refused('a finalizer on a Deployment', await as('PATCH', '/apis/apps/v1/namespaces/shop/deployments/cart', { metadata: { finalizers: ['example.com/hold'] } }), deployments);
      // A Deployment where sickbay has no business: kube-system's, even its own annotation (issue 31).
      await t.apps.createNamespacedDeployment({
        namespace: 'kube-system',
        body: { metadata: { name: 'coredns-like' }, spec: { replicas: 0, selector: { matchLabels: { app: 'dns' } }, template: { metadata: { labels: { app: 'dns' } }, spec: { containers: [{ name: 'c', image: 'x', command: ['/c'] }] } } } },
      });
      await refused('a Deployment in kube-system', await as('PATCH', '/apis/apps/v1/namespaces/kube-system/deployments/coredns-like', { metadata: { annotations: { 'sickbay.io/avoid-nodes': '{}' } } }), /sickbay-scope-deployments.*sickbay changes only Deployments in namespaces labelled sickbay.io\/injection=enabled/);
      assert.equal((await as('PATCH', '/apis/apps/v1/namespaces/shop/deployments/cart', { metadata: { annotations: { 'sickbay.io/avoid-nodes': '{}' } } })).status, 200);
      assert.equal((await as('PATCH', '/apis/apps/v1/namespaces/shop/deployments/cart', { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } } } } })).status, 200);

      const nodes = /sickbay-scope-nodes.*only its taint sickbay.io\/isolated and its label sickbay.io\/node-status/;
      await refused('a foreign taint', await as('PATCH', '/api/v1/nodes/kwok-node-1', { spec: { taints: [{ key: 'mallory', effect: 'NoExecute' }] } }), nodes);
      await refused('cordon', await as('PATCH', '/api/v1/nodes/kwok-node-1', { spec: { unschedulable: true } }), nodes);
      await refused('a foreign label', await as('PATCH', '/api/v1/nodes/kwok-node-1', { metadata: { labels: { 'node-role.kubernetes.io/control-plane': '' } } }), nodes);
      await refused('an owner reference on a Node', await as('PATCH', '/api/v1/nodes/kwok-node-1', ownedBy), nodes);
      await refused('a finalizer on a Node', await as('PATCH', '/api/v1/nodes/kwok-node-1', { metadata: { finalizers: ['example.com/hold'] } }), nodes);
      // NodeHealths: the checkpoints it asks of an agent (spec.checkpoints), nothing else; never the report (status).
      const healths = '/apis/sickbay.io/v1alpha1/nodehealths';
      const made = await rawApiRequest(t.kc, 'POST', healths, { apiVersion: 'sickbay.io/v1alpha1', kind: 'NodeHealth', metadata: { name: 'kwok-node-1' }, spec: { nodeName: 'kwok-node-1' } }, { 'content-type': 'application/json' });
      assert.ok([201, 409].includes(made.status), made.body);
      const nodeHealths = /sickbay-scope-nodehealths.*only spec.checkpoints of NodeHealth/;
      await refused('a label on a NodeHealth', await as('PATCH', `${healths}/kwok-node-1`, { metadata: { labels: { x: 'y' } } }), nodeHealths);
      await refused("a NodeHealth pointed at another node", await as('PATCH', `${healths}/kwok-node-1`, { spec: { nodeName: 'kwok-node-0' } }), nodeHealths);
      const report = await as('PATCH', `${healths}/kwok-node-1/status`, { status: { healthy: false } });
      assert.equal(report.status, 403, `an agent's report written by sickbay: ${report.body}`);
      const asked = await as('PATCH', `${healths}/kwok-node-1`, { spec: { checkpoints: [{ namespace: 'shop', pod: 'shop-pod', uid: 'u', container: 'c', requestedAt: new Date().toISOString() }] } });
      assert.equal(asked.status, 200, asked.body);
      // Events: where sickbay acts, its own namespace, and default (Node Events); not kube-system.
      const event = (namespace: string) => as('POST', `/api/v1/namespaces/${namespace}/events`, { metadata: { name: `sickbay-test.${namespace}`, namespace }, involvedObject: { kind: 'Pod', name: 'x', namespace }, reason: 'Quarantined', message: 'test', type: 'Normal' }, 'application/json');
      await refused('an Event in kube-system', await event('kube-system'), /sickbay-scope-events.*sickbay writes Events only in namespaces labelled/);
      for (const namespace of ['shop', 'default', NS]) assert.equal((await event(namespace)).status, 201, `an Event in ${namespace}`);
      const node = await t.core.readNode({ name: 'kwok-node-1' });
      const own = [...(node.spec?.taints ?? []), { key: 'sickbay.io/isolated', value: 'test', effect: 'NoExecute' }];
      const tainted = await as('PATCH', '/api/v1/nodes/kwok-node-1', { metadata: { labels: { 'sickbay.io/node-status': 'isolated' } }, spec: { taints: own } });
      assert.equal(tainted.status, 200, tainted.body);
      const back = await as('PATCH', '/api/v1/nodes/kwok-node-1', { metadata: { labels: { 'sickbay.io/node-status': null } }, spec: { taints: node.spec?.taints ?? null } });
      assert.equal(back.status, 200, back.body);
      fig('refused', `${refusals} attempts, each by the policy named`);
      fig('own writes allowed', 'the hold, diagnose, a dump script; avoid-nodes, restartedAt; its taint and label; Events where it acts; checkpoint requests');
    });

    it("the agent guard: an agent writes its own node's NodeHealth only, with the token of its pod", async () => {
      const { rawApiRequest } = await import('../support/cluster.js');
      // A pod of the agent's identity on kwok-node-0, as the DaemonSet makes one there.
      const pod = await t.core.createNamespacedPod({
        namespace: NS,
        body: { metadata: { name: 'agent-on-node-0' }, spec: { nodeName: 'kwok-node-0', serviceAccountName: 'sickbay-agent', containers: [{ name: 'agent', image: 'x', command: ['/agent'] }] } },
      });
      const bound = await t.cp.serviceAccountKubeConfig(NS, 'sickbay-agent', { name: pod.metadata!.name!, uid: pod.metadata!.uid! });
      const unbound = await t.cp.serviceAccountKubeConfig(NS, 'sickbay-agent');
      const create = (kc: KubeConfig, node: string, dryRun = false) =>
        rawApiRequest(kc, 'POST', `/apis/sickbay.io/v1alpha1/nodehealths${dryRun ? '?dryRun=All' : ''}`, { apiVersion: 'sickbay.io/v1alpha1', kind: 'NodeHealth', metadata: { name: node }, spec: { nodeName: node } });
      let last = '';
      await waitFor('the agent policy in force', async () => {
        const r = await create(bound, 'kwok-node-1', true);
        last = `${r.status} ${r.body}`;
        return r.status === 403;
      }, { timeoutMs: 20_000, intervalMs: 250 }).catch((e) => assert.fail(`${e.message}; last answer: ${last}`));
      const other = await create(bound, 'kwok-node-1');
      assert.match(other.body, /the sickbay agent on node kwok-node-0 may write only NodeHealth kwok-node-0, not kwok-node-1/);
      const anonymous = await create(unbound, 'kwok-node-0');
      assert.equal(anonymous.status, 403, anonymous.body);
      assert.match(anonymous.body, /must use the token of its pod/);
      const own = await create(bound, 'kwok-node-0');
      assert.equal(own.status, 201, own.body);
      const status = await rawApiRequest(bound, 'PATCH', '/apis/sickbay.io/v1alpha1/nodehealths/kwok-node-0/status', { status: { healthy: true } }, { 'content-type': 'application/merge-patch+json' });
      assert.equal(status.status, 200, status.body);
      assert.equal((await create(t.kc, 'kwok-node-2')).status, 201, 'an administrator is not bound by the agent guard');
      const foreignStatus = await rawApiRequest(bound, 'PATCH', '/apis/sickbay.io/v1alpha1/nodehealths/kwok-node-2/status', { status: { healthy: false } }, { 'content-type': 'application/merge-patch+json' });
      assert.equal(foreignStatus.status, 403, foreignStatus.body);

      // Its Node condition (agent.nodeCondition): on its own Node, that condition only.
      const nodeStatus = (kc: KubeConfig, node: string, status: unknown, metadata?: unknown) =>
        rawApiRequest(kc, 'PATCH', `/api/v1/nodes/${node}/status?dryRun=All`, { ...(metadata ? { metadata } : {}), status }, { 'content-type': 'application/strategic-merge-patch+json' });
      const mine = { type: 'SickbayNodeProblem', status: 'True', reason: 'ChecksFailing', message: 'sickbay agent: processes: containerd is not running', lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() };
      const ownCondition = await nodeStatus(bound, 'kwok-node-0', { conditions: [mine] });
      assert.equal(ownCondition.status, 200, ownCondition.body);
      const foreignCondition = await nodeStatus(bound, 'kwok-node-1', { conditions: [mine] });
      assert.equal(foreignCondition.status, 403, foreignCondition.body);
      assert.match(foreignCondition.body, /the sickbay agent on node kwok-node-0 may write only the status of Node kwok-node-0, not kwok-node-1/);
      const notReady = await nodeStatus(bound, 'kwok-node-0', { conditions: [{ type: 'Ready', status: 'False', reason: 'Forged', message: 'x', lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() }] });
      assert.equal(notReady.status, 403, notReady.body);
      assert.match(notReady.body, /may change only the Node condition SickbayNodeProblem/);
      const capacity = await nodeStatus(bound, 'kwok-node-0', { conditions: [mine], capacity: { pods: '1' } });
      assert.equal(capacity.status, 403, capacity.body);
      const label = await nodeStatus(bound, 'kwok-node-0', { conditions: [mine] }, { labels: { 'node-role.kubernetes.io/control-plane': '' } });
      // Refused, or (where the status subresource drops metadata changes) not applied.
      if (label.status === 200) assert.equal(JSON.parse(label.body).metadata?.labels?.['node-role.kubernetes.io/control-plane'], undefined, 'a label through nodes/status');
      else assert.equal(label.status, 403, label.body);
      const anonymousCondition = await nodeStatus(unbound, 'kwok-node-0', { conditions: [mine] });
      assert.equal(anonymousCondition.status, 403, anonymousCondition.body);
    });

    it('the ValidatingAdmissionPolicy refuses an unsafe relabel with sickbay stopped and its webhooks deleted', async () => {
      await running?.shutdown();
      running = undefined;
      // The emergency exit: both webhook configurations gone. The policy stays.
      await admission().deleteMutatingWebhookConfiguration({ name: 'sickbay' });
      await admission().deleteValidatingWebhookConfiguration({ name: 'sickbay' });
      // A pod, quarantined as the controller does it: marked by the chart's identity (the
      // policies let nobody else set the marks).
      await t.core.createNamespacedPod({ namespace: 'shop', body: { metadata: { name: 'broken', labels: { tier: 'web' } }, spec: { containers: [{ name: 'web', image: 'x', command: ['/app'] }] } } });
      const { rawApiRequest } = await import('../support/cluster.js');
      const asSickbay = await t.cp.serviceAccountKubeConfig(NS, 'sickbay');
      const marked = await rawApiRequest(asSickbay, 'PATCH', '/api/v1/namespaces/shop/pods/broken', {
        metadata: { labels: { 'sickbay.io/status': 'quarantined' }, annotations: { 'sickbay.io/original-labels': '{"app":"web","pod-template-hash":"abc"}' } },
      }, { 'content-type': 'application/merge-patch+json' });
      assert.equal(marked.status, 200, marked.body);
      const patch = (labels: Record<string, string | null>, dryRun = false) =>
        rawApiRequest(t.kc, 'PATCH', `/api/v1/namespaces/shop/pods/broken${dryRun ? '?dryRun=All' : ''}`, { metadata: { labels } }, { 'content-type': 'application/merge-patch+json' });
      let last = '';
      // The API server loads a new policy within moments; probe with dry runs (admission
      // runs, nothing is stored), so a probe that gets through before it does changes nothing.
      await waitFor('the policy in force', async () => {
        const r = await patch({ app: 'web' }, true);
        last = `${r.status} ${r.body}`;
        return r.status === 403;
      }, { timeoutMs: 20_000, intervalMs: 250 }).catch((e) => assert.fail(`${e.message}; last answer: ${last}`));
      const back = await patch({ app: 'web' });
      assert.match(back.body, /ValidatingAdmissionPolicy 'sickbay-relabel-guard'.*adding back the labels/);
      // Nor through the status subresource (issue 31).
      const viaStatus = await rawApiRequest(t.kc, 'PATCH', '/api/v1/namespaces/shop/pods/broken/status', { metadata: { labels: { app: 'web' } } }, { 'content-type': 'application/merge-patch+json' });
      assert.equal(viaStatus.status, 403, viaStatus.body);
      assert.match(viaStatus.body, /sickbay-relabel-guard.*adding back the labels/);
      const status = await patch({ 'sickbay.io/status': null });
      assert.equal(status.status, 403);
      assert.match(status.body, /ValidatingAdmissionPolicy 'sickbay-marks-guard'.*only sickbay may set or change label sickbay.io\/status/);
      // A forged quarantine of a healthy pod, or one created marked: refused as well.
      await t.core.createNamespacedPod({ namespace: 'shop', body: { metadata: { name: 'healthy', labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'x', command: ['/app'] }] } } });
      const forged = await rawApiRequest(t.kc, 'PATCH', '/api/v1/namespaces/shop/pods/healthy', { metadata: { labels: { 'sickbay.io/status': 'quarantined' } } }, { 'content-type': 'application/merge-patch+json' });
      assert.equal(forged.status, 403, forged.body);
      assert.match(forged.body, /sickbay-marks-guard/);
      const created = await rawApiRequest(t.kc, 'POST', '/api/v1/namespaces/shop/pods', {
        metadata: { name: 'forged', annotations: { 'sickbay.io/registry': '{}' } },
        spec: { containers: [{ name: 'web', image: 'x', command: ['/app'] }] },
      });
      assert.equal(created.status, 403, created.body);
      assert.match(created.body, /only sickbay may set or change its sickbay.io annotations/);
      // A label it never had, or one with another value, is fine.
      assert.equal((await patch({ note: 'looked-at' })).status, 200);
      assert.equal((await patch({ app: 'other' })).status, 200);
    });

    it('sickbay uninstall --emergency, with sickbay dead, removes every webhook and policy it added and stops its controllers (issue 31)', async () => {
      const { rawApiRequest } = await import('../support/cluster.js');
      // Everything back as installed (the previous test deleted the webhooks); sickbay is not running.
      const up = await helm(['upgrade', 'sickbay', chartDir, '--namespace', NS, '--reset-then-reuse-values', '--wait=false'], { KUBECONFIG: t.cp.kubeconfigPath });
      assert.equal(up.code, 0, up.stderr);
      const patch = (name: string, labels: Record<string, string | null>) =>
        rawApiRequest(t.kc, 'PATCH', `/api/v1/namespaces/shop/pods/${name}`, { metadata: { labels } }, { 'content-type': 'application/merge-patch+json' });
      // What a dead sickbay costs other writers: an update of a quarantined pod fails closed
      // (its webhook does not answer), and the guards refuse even an administrator.
      await waitFor('the webhook failing closed', async () => (await patch('broken', { note: 'again' })).status >= 400, { timeoutMs: 20_000, intervalMs: 250 });
      assert.match((await patch('broken', { note: 'again' })).body, /failed calling webhook|sickbay/);
      const sb = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../../src/cli.ts', import.meta.url)), 'uninstall', '--emergency', '--kubeconfig', t.cp.kubeconfigPath, '--sickbay-namespace', NS], { timeout: 60_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
      assert.equal(sb.code, 0, sb.stderr);
      for (const line of [/deleted MutatingWebhookConfiguration sickbay/, /deleted ValidatingWebhookConfiguration sickbay/, /deleted ValidatingAdmissionPolicyBinding sickbay-marks-guard/, /deleted ValidatingAdmissionPolicy sickbay-relabel-guard/, /scaled Deployment sickbay-system\/sickbay to 0/]) assert.match(sb.stdout, line);
      const labelled = { labelSelector: 'app.kubernetes.io/name=sickbay' };
      assert.deepEqual((await admission().listMutatingWebhookConfiguration(labelled)).items, []);
      assert.deepEqual((await admission().listValidatingWebhookConfiguration(labelled)).items, []);
      assert.deepEqual((await admission().listValidatingAdmissionPolicyBinding(labelled)).items, []);
      assert.deepEqual((await admission().listValidatingAdmissionPolicy(labelled)).items, []);
      assert.equal((await t.apps.readNamespacedDeployment({ name: 'sickbay', namespace: NS })).spec?.replicas, 0);
      // The API server forgets removed policies within moments: writes go through again.
      await waitFor('writes unblocked', async () => (await patch('broken', { note: 'again' })).status === 200, { timeoutMs: 20_000, intervalMs: 250 });
      await waitFor('the marks guard gone', async () => (await patch('healthy', { 'sickbay.io/status': 'quarantined' })).status === 200, { timeoutMs: 20_000, intervalMs: 250 });
      // Run again: nothing left, said plainly.
      const again = await new Promise<string>((resolve) =>
        execFile(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../../src/cli.ts', import.meta.url)), 'uninstall', '--emergency', '--kubeconfig', t.cp.kubeconfigPath, '--sickbay-namespace', NS, '--keep-running'], { timeout: 60_000 }, (_e, stdout) => resolve(stdout)),
      );
      assert.match(again, /nothing labelled app\.kubernetes\.io\/name=sickbay found/);
    });
  });
});
