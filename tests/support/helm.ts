// helm for the chart's tests (dev/helm.ts finds it). Missing is a failure that says how to get it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chartDir, findHelm, HELM_MISSING } from '../../dev/helm.js';
import { IMAGES } from '../../dev/images.js';
import { REAL_NODE } from '../../dev/real-node.js';

export { chartDir, HELM_VERSION } from '../../dev/helm.js';

export function helmBinary(): string {
  return findHelm() ?? assert.fail(HELM_MISSING);
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function helm(args: string[], env: Record<string, string> = {}): Promise<HelmResult> {
  return new Promise((resolve) => {
    execFile(helmBinary(), args, { env: { ...process.env, HELM_CACHE_HOME: '/tmp/sickbay-helm/cache', HELM_CONFIG_HOME: '/tmp/sickbay-helm/config', HELM_DATA_HOME: '/tmp/sickbay-helm/data', ...env }, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * `helm install sickbay` with the image built here, one replica on the real node, the
 * agent checking its real kubelet, and the certificates from `mode`.
 */
export async function installOnRealNode(cp: { kubeconfigPath: string; realNode?: { kubeletHealthz: string } }, mode: 'self-managed' | 'cert-manager', extra: string[] = []): Promise<void> {
  const [repository, tag] = IMAGES.sickbay.split(':') as [string, string];
  const r = await helm(
    [
      'install', 'sickbay', chartDir, '--namespace', 'sickbay-system', '--create-namespace', '--wait=false',
      '--set', `image.repository=${repository}`, '--set', `image.tag=${tag}`, '--set', 'image.pullPolicy=Never',
      '--set', `shim.image.repository=${IMAGES.shim.split(':')[0]}`,
      '--set', `certificates.mode=${mode}`,
      '--set', 'replicas=1',
      '--set-json', `nodeSelector={"${REAL_NODE.label}":"real"}`,
      '--set', `agent.kubeletUrl=${cp.realNode!.kubeletHealthz}`,
      '--set', 'controllers.diagnostics.enabled=false',
      ...extra,
    ],
    { KUBECONFIG: cp.kubeconfigPath },
  );
  assert.equal(r.code, 0, r.stderr);
}

/** `helm template` with --set pairs; fails the test with helm's message if it fails. */
export async function template(set: Record<string, string> = {}, extra: string[] = [], o: { namespace?: string; release?: string } = {}): Promise<string> {
  const args = ['template', o.release ?? 'sickbay', chartDir, '--namespace', o.namespace ?? 'sickbay-system', ...Object.entries(set).flatMap(([k, v]) => ['--set', `${k}=${v}`]), ...extra];
  const r = await helm(args);
  assert.equal(r.code, 0, `helm ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}
