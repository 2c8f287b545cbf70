// Runs sickbay against a test cluster: certificates for 127.0.0.1, `serve` in this
// process on a free port, and the two webhook configurations registered by URL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AdmissionregistrationV1Api, CoreV1Api, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { writeCerts } from '../../src/commands/certs.js';
import { type ServeHandle, type ServeOptions, serve } from '../../src/commands/serve.js';
import { readConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { freePorts } from '../../src/dev/control-plane.js';
import { ANN_INJECTED } from '../../src/names.js';
import { waitFor } from '../../src/util/wait.js';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from '../../src/webhook/webhook-configurations.js';
import type { TestCluster } from './cluster.js';

export const SICKBAY_NS = 'sickbay-system';
export const SICKBAY_SA = 'sickbay';

export interface RunningSickbay {
  config: Config;
  handle: ServeHandle;
  /** Acts as sickbay's ServiceAccount (bound to cluster-admin in tests). */
  kc: KubeConfig;
  certDir: string;
  stop(): Promise<void>;
}

export async function ensureSickbayIdentity(t: TestCluster): Promise<KubeConfig> {
  await t.core.createNamespace({ body: { metadata: { name: SICKBAY_NS } } }).catch((e) => {
    if (e?.code !== 409) throw e;
  });
  const rbac = t.kc.makeApiClient(RbacAuthorizationV1Api);
  await rbac
    .createClusterRoleBinding({
      body: {
        metadata: { name: 'sickbay-test-admin' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'ServiceAccount', name: SICKBAY_SA, namespace: SICKBAY_NS }],
      },
    })
    .catch((e) => {
      if (e?.code !== 409) throw e;
    });
  return t.cp.serviceAccountKubeConfig(SICKBAY_NS, SICKBAY_SA);
}

export async function startSickbay(t: TestCluster, env: Record<string, string> = {}, opts: Omit<ServeOptions, 'kubeConfig'> = {}): Promise<RunningSickbay> {
  const kc = await ensureSickbayIdentity(t);
  const certDir = mkdtempSync(path.join(tmpdir(), 'sickbay-test-certs-'));
  const [port] = (await freePorts(1)) as [number];
  const url = `https://127.0.0.1:${port}`;
  const certs = writeCerts({ outDir: certDir, service: 'sickbay', namespace: SICKBAY_NS, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validityDays: 1, url });
  const config = readConfig({
    SICKBAY_PORT: String(port),
    SICKBAY_BIND_ADDRESS: '127.0.0.1',
    SICKBAY_TLS_CERT: certs.certFile,
    SICKBAY_TLS_KEY: certs.keyFile,
    SICKBAY_DRAIN: '0s',
    SICKBAY_NAMESPACE: SICKBAY_NS,
    SICKBAY_SERVICE_ACCOUNT: SICKBAY_SA,
    SICKBAY_CONTROLLERS: 'false',
    SICKBAY_LOG_LEVEL: process.env.SICKBAY_TEST_LOG_LEVEL ?? 'warn',
    ...env,
  });
  const handle = await serve(config, createLogger(config.logLevel), { ...opts, kubeConfig: kc });
  const admission = t.kc.makeApiClient(AdmissionregistrationV1Api);
  const common = { target: { url }, caBundle: Buffer.from(certs.caPem).toString('base64'), ownNamespace: SICKBAY_NS, timeoutSeconds: 5 };
  await admission.createMutatingWebhookConfiguration({ body: mutatingWebhookConfiguration(common) });
  await admission.createValidatingWebhookConfiguration({ body: validatingWebhookConfiguration(common) });
  return {
    config,
    handle,
    kc,
    certDir,
    async stop() {
      await admission.deleteMutatingWebhookConfiguration({ name: 'sickbay' }).catch(() => undefined);
      await admission.deleteValidatingWebhookConfiguration({ name: 'sickbay' }).catch(() => undefined);
      await handle.shutdown();
      rmSync(certDir, { recursive: true, force: true });
    },
  };
}

/** The API server picks up new webhook configurations asynchronously: wait until a pod comes back injected. */
export async function waitForInjection(core: CoreV1Api, namespace: string) {
  let i = 0;
  await waitFor(
    'the mutating webhook to be in effect',
    async () => {
      const name = `webhook-probe-${i++}`;
      const pod = await core.createNamespacedPod({ namespace, body: { metadata: { name }, spec: { containers: [{ name: 'c', image: 'x', command: ['true'] }] } } });
      await core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }).catch(() => undefined);
      return pod.metadata?.annotations?.[ANN_INJECTED] === 'true';
    },
    { timeoutMs: 20_000, intervalMs: 250 },
  );
}
