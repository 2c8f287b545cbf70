// cert-manager's and prometheus-operator's real CRDs (fetched from their Go modules by
// hack/build-control-plane.sh), so the chart's optional objects are validated against
// the schemas they will meet on a real cluster.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ApiextensionsV1Api, type KubeConfig, loadAllYaml, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { cacheDir } from '../../dev/binaries.js';
import { waitFor } from '../../src/util/wait.js';

const CM = process.env.SICKBAY_CERT_MANAGER_VERSION ?? 'v1.21.2';
const PO = process.env.SICKBAY_PROMETHEUS_OPERATOR_VERSION ?? 'v0.85.0';
const FILES = ['cert-manager.io_issuers.yaml', 'cert-manager.io_certificates.yaml', 'monitoring.coreos.com_servicemonitors.yaml', 'monitoring.coreos.com_podmonitors.yaml', 'monitoring.coreos.com_prometheusrules.yaml'];

export async function installThirdPartyCrds(kc: KubeConfig) {
  const dir = path.join(cacheDir(), `crds-cert-manager-${CM}-prometheus-operator-${PO}`);
  const missing = FILES.filter((f) => !existsSync(path.join(dir, f)));
  assert.deepEqual(missing, [], `third-party CRDs missing in ${dir}: run \`bash hack/build-control-plane.sh crds\``);
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const crds = FILES.flatMap((f) => loadAllYaml(readFileSync(path.join(dir, f), 'utf8')) as V1CustomResourceDefinition[]).filter(Boolean);
  for (const crd of crds) await api.createCustomResourceDefinition({ body: crd }).catch((e) => (e?.code === 409 ? undefined : Promise.reject(e)));
  for (const crd of crds) {
    await waitFor(`CRD ${crd.metadata!.name} established`, async () => (await api.readCustomResourceDefinition({ name: crd.metadata!.name! })).status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'));
  }
}
