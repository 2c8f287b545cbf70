// Runs sickbay against a test cluster: certificates for 127.0.0.1, `serve` in this
// process on a free port, and the two webhook configurations registered by URL.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { installIdentity, localServe, registerWebhooks, unregisterWebhooks } from '../../dev/local-install.js';
import { type ServeHandle, type ServeOptions, serve } from '../../src/manager/serve.js';
import { buildComponents, type ComponentOverrides } from '../../src/manager/components.js';
import { readConfig, type Config } from '../../src/core/config.js';
import { createLogger } from '../../src/core/log.js';
import { freePorts } from '../../dev/control-plane.js';
import { ANN_INJECTED } from '../../src/core/names.js';
import { waitFor } from '../../src/util/wait.js';
import type { TestCluster } from './cluster.js';

const cliPath = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const distCliPath = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

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

/** sickbay's ServiceAccount with the least-privilege rules the chart grants (not cluster-admin). */
export async function ensureSickbayIdentity(t: TestCluster): Promise<KubeConfig> {
  await installIdentity(t.kc, SICKBAY_NS, SICKBAY_SA);
  return t.cp.serviceAccountKubeConfig(SICKBAY_NS, SICKBAY_SA);
}

export async function startSickbay(t: TestCluster, env: Record<string, string> = {}, overrides: ComponentOverrides & Pick<ServeOptions, 'metrics'> = {}): Promise<RunningSickbay> {
  const kc = await ensureSickbayIdentity(t);
  const certDir = mkdtempSync(path.join(tmpdir(), 'sickbay-test-certs-'));
  const [port] = (await freePorts(1)) as [number];
  const local = localServe({ certDir, port, namespace: SICKBAY_NS, serviceAccount: SICKBAY_SA });
  const { url, certs } = local;
  const config = readConfig({
    ...local.env,
    SICKBAY_CONTROLLERS: 'false',
    SICKBAY_LEADER_ELECTION: 'false',
    SICKBAY_LOG_LEVEL: process.env.SICKBAY_TEST_LOG_LEVEL ?? 'warn',
    ...env,
  });
  const handle = await serve(config, createLogger(config.logLevel), {
    metrics: overrides.metrics,
    kubeConfig: kc,
    components: config.controllers ? (ctx) => buildComponents(config, kc, ctx, overrides) : undefined,
  });
  await registerWebhooks(t.kc, { url, caPem: certs.caPem, ownNamespace: SICKBAY_NS });
  return {
    config,
    handle,
    kc,
    certDir,
    async stop() {
      await unregisterWebhooks(t.kc);
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

export interface SickbayProcess {
  port: number;
  url: string;
  caPem: string;
  /** Its folder: kubeconfig, and the certificate files it serves (SICKBAY_TLS_CERT, _KEY, _CA). */
  dir: string;
  pid: number;
  exited: Promise<number | null>;
  output(): string;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * `sickbay serve` as a separate process (for leader election and failover). With `at`,
 * it serves on that port from that folder (its CA kept, so a restarted process on the
 * same port is trusted by webhooks registered for the first), and the folder is kept.
 */
export async function spawnSickbay(t: TestCluster, name: string, env: Record<string, string>, at?: { dir: string; port: number }): Promise<SickbayProcess> {
  const kc = await ensureSickbayIdentity(t);
  const dir = at?.dir ?? mkdtempSync(path.join(tmpdir(), `sickbay-${name}-`));
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kc.exportConfig());
  const port = at?.port ?? ((await freePorts(1)) as [number])[0];
  const local = localServe({ certDir: dir, port, namespace: SICKBAY_NS, serviceAccount: SICKBAY_SA, podName: name });
  // SICKBAY_NODE_ARGS adds Node flags (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof for a profile).
  const nodeArgs = (process.env.SICKBAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // SICKBAY_USE_DIST=1 runs the compiled dist/cli.js (`npm run build` first), as the image
  // does; SICKBAY_DIST_CLI names another build's (a benchmark of two builds side by side).
  // (Also when the test's own env for it says so: a row that measures what the image runs.)
  const entry = (env.SICKBAY_USE_DIST ?? process.env.SICKBAY_USE_DIST) === '1' ? [process.env.SICKBAY_DIST_CLI ?? distCliPath] : ['--import', 'tsx', cliPath];
  const child = spawn(process.execPath, [...nodeArgs, ...entry, 'serve', '--kubeconfig', kubeconfig], {
    env: {
      ...process.env,
      ...local.env,
      SICKBAY_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  // SICKBAY_TEST_LOG_DIR keeps each replica's log for a post-mortem.
  const logFile = process.env.SICKBAY_TEST_LOG_DIR ? path.join(process.env.SICKBAY_TEST_LOG_DIR, `${name}.log`) : undefined;
  const collect = (d: Buffer) => {
    out += d;
    if (logFile) appendFileSync(logFile, d);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  if (!at) exited.then(() => rmSync(dir, { recursive: true, force: true }));
  return { port, url: local.url, caPem: local.certs.caPem, dir, pid: child.pid!, exited, output: () => out, kill: (signal = 'SIGTERM') => child.kill(signal) };
}
