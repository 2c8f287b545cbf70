// helm, built from the Go module proxy by hack/build-control-plane.sh into the cache
// (or $SICKBAY_HELM, or helm on PATH). Missing is a failure that says how to get it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { cacheDir } from '../../src/dev/binaries.js';

export const HELM_VERSION = process.env.SICKBAY_HELM_VERSION ?? 'v3.22.0';
export const chartDir = new URL('../../chart', import.meta.url).pathname;

export function helmBinary(): string {
  const candidates = [process.env.SICKBAY_HELM, path.join(cacheDir(), `helm-${HELM_VERSION}`, 'helm'), ...(process.env.PATH ?? '').split(':').map((d) => path.join(d, 'helm'))];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  assert.fail(`helm not found: run \`bash hack/build-control-plane.sh helm\` (builds ${HELM_VERSION} from the Go module proxy into ${cacheDir()}) or set SICKBAY_HELM`);
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
