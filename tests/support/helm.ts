// helm for the chart's tests (src/dev/helm.ts finds it). Missing is a failure that says how to get it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chartDir, findHelm, HELM_MISSING } from '../../src/dev/helm.js';

export { chartDir, HELM_VERSION } from '../../src/dev/helm.js';

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

/** `helm template` with --set pairs; fails the test with helm's message if it fails. */
export async function template(set: Record<string, string> = {}, o: { namespace?: string; release?: string } = {}): Promise<string> {
  const args = ['template', o.release ?? 'sickbay', chartDir, '--namespace', o.namespace ?? 'sickbay-system', ...Object.entries(set).flatMap(([k, v]) => ['--set', `${k}=${v}`])];
  const r = await helm(args);
  assert.equal(r.code, 0, `helm ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}
