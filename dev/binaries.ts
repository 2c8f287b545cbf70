// Finds the control plane binaries, building them once from the Go module proxy when
// they are nowhere to be found. Search order, per binary:
//   $SICKBAY_BIN_DIR, $KUBEBUILDER_ASSETS (envtest's convention), then the build cache
//   ($SICKBAY_CACHE_DIR, default ~/.cache/sickbay, one folder per component and version).
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const VERSIONS = {
  kubernetes: process.env.SICKBAY_K8S_VERSION ?? 'v1.36.3',
  etcd: process.env.SICKBAY_ETCD_VERSION ?? 'v3.6.16',
  kwok: process.env.SICKBAY_KWOK_VERSION ?? 'v0.8.0',
  containerd: process.env.SICKBAY_CONTAINERD_VERSION ?? 'v2.4.2',
  criu: process.env.SICKBAY_CRIU_VERSION ?? '4.2.1',
};

export type BinaryName =
  | 'etcd'
  | 'kube-apiserver'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'kwok'
  | 'kubelet'
  | 'kube-proxy'
  | 'kubectl'
  | 'containerd'
  | 'containerd-shim-runc-v2'
  | 'ctr'
  | 'criu';
export type Binaries = Record<BinaryName, string>;
/** What every control plane needs. */
export const CONTROL_PLANE_BINARIES: BinaryName[] = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];
/**
 * What a real node needs besides: the kubelet and kube-proxy (from the control plane's
 * module), containerd 2.x (Debian's 1.6 cannot checkpoint) and CRIU 4.x (Debian's 3.17
 * fails on this kernel), all built into the cache.
 */
export const NODE_BINARIES: BinaryName[] = ['kubelet', 'kube-proxy', 'containerd', 'containerd-shim-runc-v2', 'ctr', 'criu'];

function cacheFolder(name: BinaryName): string {
  switch (name) {
    case 'etcd':
      return `etcd-${VERSIONS.etcd}`;
    case 'kwok':
      return `kwok-${VERSIONS.kwok}`;
    case 'kubectl':
      return `kubectl-${VERSIONS.kubernetes}`;
    case 'containerd':
    case 'containerd-shim-runc-v2':
    case 'ctr':
      return `containerd-${VERSIONS.containerd}`;
    case 'criu':
      return `criu-${VERSIONS.criu}`;
    default:
      return `k8s-${VERSIONS.kubernetes}`;
  }
}

export function cacheDir(env = process.env): string {
  return env.SICKBAY_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'sickbay');
}

function candidates(name: BinaryName, env: NodeJS.ProcessEnv): string[] {
  const versioned = path.join(cacheDir(env), cacheFolder(name));
  return [env.SICKBAY_BIN_DIR, env.KUBEBUILDER_ASSETS, versioned].filter((d): d is string => !!d).map((d) => path.join(d, name));
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findBinaries(env = process.env, names = CONTROL_PLANE_BINARIES): { found: Partial<Binaries>; missing: BinaryName[] } {
  const found: Partial<Binaries> = {};
  const missing: BinaryName[] = [];
  for (const name of names) {
    const hit = candidates(name, env).find(executable);
    if (hit) found[name] = hit;
    else missing.push(name);
  }
  return { found, missing };
}

const buildScript = fileURLToPath(new URL('../hack/build-control-plane.sh', import.meta.url));

/** Resolves every binary of `names`, building what is missing unless SICKBAY_NO_BUILD=1. */
export async function ensureBinaries(
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  env = process.env,
  names = CONTROL_PLANE_BINARIES,
): Promise<Binaries> {
  let { found, missing } = findBinaries(env, names);
  if (missing.length === 0) return found as Binaries;
  const howToProvide =
    'Provide them instead: put kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok (and kubelet and kube-proxy for a real node) in a folder and set SICKBAY_BIN_DIR (or KUBEBUILDER_ASSETS) to it.';
  if (env.SICKBAY_NO_BUILD === '1') {
    throw new Error(`control plane binaries missing: ${missing.join(', ')} (SICKBAY_NO_BUILD=1, so not building). ${howToProvide}`);
  }
  log(`control plane binaries missing (${missing.join(', ')}); building them from the Go module proxy into ${cacheDir(env)}. The first build takes 15-30 minutes.`);
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn('bash', [buildScript, 'all'], { env: { ...env, SICKBAY_CACHE_DIR: cacheDir(env) }, stdio: ['ignore', 'inherit', 'pipe'] });
    child.stderr.setEncoding('utf8');
    let buf = '';
    child.stderr.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.startsWith('go: downloading')) log(line);
      }
    });
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? 1));
  });
  ({ found, missing } = findBinaries(env, names));
  if (code !== 0 || missing.length > 0) {
    throw new Error(`building the control plane failed (exit ${code}; still missing: ${missing.join(', ') || 'none'}). See the lines above. ${howToProvide}`);
  }
  return found as Binaries;
}
