// A real cert-manager (controller and cainjector) as local processes against the test
// control plane: built by `bash hack/build-control-plane.sh cert-manager` from its Go
// module (hack/cert-manager), found here by the same content hash. Missing is a failure
// that says how to build it.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiextensionsV1Api, type KubeConfig, loadAllYaml, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { cacheDir } from '../../dev/binaries.js';
import { waitFor } from '../../src/util/wait.js';

const VERSION = process.env.SICKBAY_CERT_MANAGER_VERSION ?? 'v1.21.2';
const wrapper = fileURLToPath(new URL('../../hack/cert-manager/', import.meta.url));

export function certManagerDir(): string {
  const hash = createHash('sha256');
  for (const f of ['main.go', 'go.mod', 'go.sum']) hash.update(readFileSync(path.join(wrapper, f)));
  const dir = path.join(cacheDir(), `cert-manager-${VERSION}-${hash.digest('hex').slice(0, 12)}`);
  assert.ok(existsSync(path.join(dir, 'cert-manager-local')), `cert-manager ${VERSION} is not built in ${dir}: run \`bash hack/build-control-plane.sh cert-manager\` (Go and the module proxy, about 3-5 minutes)`);
  return dir;
}

export interface CertManager {
  stop(): Promise<void>;
  logs(): string;
}

/** Installs cert-manager's CRDs and starts its controller and cainjector (logs in logDir). */
export async function startCertManager(kc: KubeConfig, kubeconfigPath: string, logDir: string): Promise<CertManager> {
  const dir = certManagerDir();
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const crds = readdirSync(path.join(dir, 'crds'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => loadAllYaml(readFileSync(path.join(dir, 'crds', f), 'utf8')) as V1CustomResourceDefinition[])
    .filter(Boolean);
  for (const crd of crds) await api.createCustomResourceDefinition({ body: crd }).catch((e) => (e?.code === 409 ? undefined : Promise.reject(e)));
  for (const crd of crds) {
    await waitFor(`CRD ${crd.metadata!.name} established`, async () => (await api.readCustomResourceDefinition({ name: crd.metadata!.name! })).status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'));
  }
  const children: ChildProcess[] = [];
  for (const command of ['controller', 'cainjector']) {
    const log = path.join(logDir, `cert-manager-${command}.log`);
    const fd = openSync(log, 'a');
    children.push(spawn(path.join(dir, 'cert-manager-local'), [command, `--kubeconfig=${kubeconfigPath}`, '--v=1'], { stdio: ['ignore', fd, fd] }));
    closeSync(fd);
  }
  return {
    logs: () => ['controller', 'cainjector'].map((c) => `--- ${c}\n${readFileSync(path.join(logDir, `cert-manager-${c}.log`), 'utf8').split('\n').slice(-30).join('\n')}`).join('\n'),
    async stop() {
      for (const c of children) c.kill('SIGTERM');
      await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    },
  };
}
