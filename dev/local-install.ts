// Installs sickbay's identity and webhooks into a local control plane, the way the Helm
// chart does on a real cluster: its namespace, a ServiceAccount, least-privilege RBAC,
// and the two webhook configurations (by URL: there is no pod network locally).
import { execFile } from 'node:child_process';
import { AdmissionregistrationV1Api, ApiextensionsV1Api, CoreV1Api, type KubeConfig, type KubernetesObject, KubernetesObjectApi, RbacAuthorizationV1Api, type V1PolicyRule } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { errorText } from '../src/kube/api.js';
import { chartDir, findHelm, HELM_MISSING } from './helm.js';
import { nodeHealthCrd } from '../src/core/nodehealth.js';
import { waitFor } from '../src/util/wait.js';
import { writeCerts } from '../src/cli/certs.js';
import { AGENT_CLUSTER_RULES, SERVE_CLUSTER_RULES, SERVE_NAMESPACE_RULES } from '../src/core/rbac.js';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from '../src/webhook/webhook-configurations.js';

const ignoreConflict = (e: { code?: number }) => {
  if (e?.code !== 409) throw e;
};

async function bindClusterRules(rbac: RbacAuthorizationV1Api, name: string, rules: V1PolicyRule[], serviceAccount: string, namespace: string) {
  await rbac.createClusterRole({ body: { metadata: { name }, rules } }).catch(ignoreConflict);
  await rbac
    .createClusterRoleBinding({
      body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name }, subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }] },
    })
    .catch(ignoreConflict);
}

export async function installIdentity(admin: KubeConfig, namespace: string, serviceAccount: string) {
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(ignoreConflict);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: serviceAccount } } }).catch(ignoreConflict);
  const name = `sickbay:${serviceAccount}`;
  await bindClusterRules(rbac, name, SERVE_CLUSTER_RULES, serviceAccount, namespace);
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules: SERVE_NAMESPACE_RULES } }).catch(ignoreConflict);
  await rbac
    .createNamespacedRoleBinding({
      namespace,
      body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }] },
    })
    .catch(ignoreConflict);
}

/** The node agent's ServiceAccount with only the agent's rules. */
export async function installAgentIdentity(admin: KubeConfig, namespace: string, serviceAccount: string) {
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(ignoreConflict);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: serviceAccount } } }).catch(ignoreConflict);
  await bindClusterRules(admin.makeApiClient(RbacAuthorizationV1Api), `sickbay:${serviceAccount}`, AGENT_CLUSTER_RULES, serviceAccount, namespace);
}

/** The NodeHealth CRD (the chart ships the same object in crds/); waits until it is served. */
export async function installNodeHealthCrd(admin: KubeConfig) {
  const api = admin.makeApiClient(ApiextensionsV1Api);
  const crd = nodeHealthCrd();
  await api.createCustomResourceDefinition({ body: crd }).catch(ignoreConflict);
  await waitFor(
    'the NodeHealth CRD to be established',
    async () => (await api.readCustomResourceDefinition({ name: crd.metadata!.name! })).status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'),
    { timeoutMs: 30_000 },
  );
}

export async function registerWebhooks(admin: KubeConfig, o: { url: string; caPem: string; ownNamespace: string }) {
  const api = admin.makeApiClient(AdmissionregistrationV1Api);
  const common = { target: { url: o.url }, caBundle: Buffer.from(o.caPem).toString('base64'), ownNamespace: o.ownNamespace };
  for (const [create, remove, body] of [
    [api.createMutatingWebhookConfiguration.bind(api), api.deleteMutatingWebhookConfiguration.bind(api), mutatingWebhookConfiguration(common)],
    [api.createValidatingWebhookConfiguration.bind(api), api.deleteValidatingWebhookConfiguration.bind(api), validatingWebhookConfiguration(common)],
  ] as const) {
    await remove({ name: body.metadata!.name! }).catch(() => undefined);
    await (create as (p: { body: typeof body }) => Promise<unknown>)({ body });
  }
}

export async function unregisterWebhooks(admin: KubeConfig) {
  const api = admin.makeApiClient(AdmissionregistrationV1Api);
  await api.deleteMutatingWebhookConfiguration({ name: 'sickbay' }).catch(() => undefined);
  await api.deleteValidatingWebhookConfiguration({ name: 'sickbay' }).catch(() => undefined);
}

/**
 * Certificates for 127.0.0.1 and the environment of a `sickbay serve` running on this
 * machine against a local control plane (webhooks registered by URL).
 */
export function localServe(o: { certDir: string; port: number; namespace: string; serviceAccount: string; podName?: string; validityDays?: number }) {
  const url = `https://127.0.0.1:${o.port}`;
  const certs = writeCerts({
    outDir: o.certDir,
    service: 'sickbay',
    namespace: o.namespace,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validityDays: o.validityDays ?? 1,
    url,
  });
  const env: Record<string, string> = {
    SICKBAY_PORT: String(o.port),
    SICKBAY_BIND_ADDRESS: '127.0.0.1',
    SICKBAY_TLS_CERT: certs.certFile,
    SICKBAY_TLS_KEY: certs.keyFile,
    SICKBAY_DRAIN: '0s',
    SICKBAY_NAMESPACE: o.namespace,
    SICKBAY_SERVICE_ACCOUNT: o.serviceAccount,
    ...(o.podName ? { SICKBAY_POD_NAME: o.podName } : {}),
  };
  return { url, certs, env };
}

/** Kinds of the chart that run sickbay's pods, or need them: a local `sickbay serve` and local agents replace them. */
const RUN_HERE = new Set(['Deployment', 'DaemonSet', 'Service', 'PodDisruptionBudget', 'Pod']);

/**
 * The chart's objects, as `helm template` renders them for this namespace, applied to a
 * local control plane whose `sickbay serve` runs on this machine: its CRD, ServiceAccounts,
 * RBAC, scope, relabel and agent policies, exactly as a user installs them; the webhook
 * configurations call `url` (there is no pod network) with `caPem`; the Deployment,
 * DaemonSet and Service are left out (serve and the agents run here as processes).
 */
export async function installChartObjects(admin: KubeConfig, o: { namespace: string; url: string; caPem: string; set?: Record<string, string> }): Promise<KubernetesObject[]> {
  const helm = findHelm();
  if (!helm) throw new Error(HELM_MISSING);
  const set = { 'certificates.mode': 'self-managed', 'certificates.selfManaged.existingSecret': 'sickbay-tls', ...o.set };
  const args = ['template', 'sickbay', chartDir, '--namespace', o.namespace, '--include-crds', '--skip-tests', ...Object.entries(set).flatMap(([k, v]) => ['--set', `${k}=${v}`])];
  const rendered = await new Promise<string>((resolve, reject) =>
    execFile(helm, args, { env: { ...process.env, HELM_CACHE_HOME: '/tmp/sickbay-helm/cache', HELM_CONFIG_HOME: '/tmp/sickbay-helm/config', HELM_DATA_HOME: '/tmp/sickbay-helm/data' }, maxBuffer: 32 << 20 }, (err, out, stderr) =>
      err ? reject(new Error(`helm template failed: ${stderr.trim()}`)) : resolve(out),
    ),
  );
  const objects = (yaml.loadAll(rendered) as KubernetesObject[]).filter((d) => d && !RUN_HERE.has(d.kind ?? ''));
  const caBundle = Buffer.from(o.caPem).toString('base64');
  for (const obj of objects) {
    if (obj.kind !== 'MutatingWebhookConfiguration' && obj.kind !== 'ValidatingWebhookConfiguration') continue;
    for (const w of (obj as { webhooks?: Array<{ clientConfig: { service?: { path?: string }; url?: string; caBundle?: string } }> }).webhooks ?? []) {
      w.clientConfig = { url: `${o.url}${w.clientConfig.service?.path ?? ''}`, caBundle };
    }
  }
  const api = KubernetesObjectApi.makeApiClient(admin);
  await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: o.namespace } } }).catch(ignoreConflict);
  const crds = objects.filter((d) => d.kind === 'CustomResourceDefinition');
  for (const obj of [...crds, ...objects.filter((d) => d.kind !== 'CustomResourceDefinition')]) {
    if (obj === objects.find((d) => d.kind !== 'CustomResourceDefinition')) {
      for (const crd of crds) {
        await waitFor(`CRD ${crd.metadata!.name} to be established`, async () => (await admin.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: crd.metadata!.name! })).status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'), { timeoutMs: 30_000 });
      }
    }
    await api.create(obj).catch((err: unknown) => {
      if ((err as { code?: number })?.code !== 409) throw new Error(`${obj.kind} ${obj.metadata?.name}: ${errorText(err)}`, { cause: err });
    });
  }
  return objects;
}
