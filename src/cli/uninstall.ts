// `sickbay uninstall --emergency`: sickbay stops touching anything at once, whether or not
// it runs. Every webhook configuration and ValidatingAdmissionPolicy (and binding) it
// added is deleted (the marks guard matches every pod write with failurePolicy: Fail, so
// leaving it behind a broken sickbay would refuse writes cluster-wide), and its own
// Deployment is scaled to 0 so no controller acts. Pods, quarantined ones included, keep
// running; `helm upgrade` (or install) puts it all back.
import { AdmissionregistrationV1Api, AppsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { codeOf, mergePatch } from '../kube/api.js';

export interface UninstallOptions {
  /** Objects sickbay added carry this label (the chart's, and webhook-config/'s). */
  selector: string;
  /** Where `sickbay serve` runs. */
  namespace: string;
  /** Leave its Deployment running (webhooks and policies go all the same). */
  keepRunning?: boolean;
}

export async function emergencyUninstall(kc: KubeConfig, o: UninstallOptions): Promise<string> {
  const adm = kc.makeApiClient(AdmissionregistrationV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const done: string[] = [];
  const gone = (err: unknown) => {
    if (codeOf(err) !== 404) throw err;
  };
  // The webhooks first (they are what other writes wait on), then the bindings (a binding
  // is what puts a policy in force), then the policies.
  const kinds: Array<[string, () => Promise<{ items: Array<{ metadata?: { name?: string } }> }>, (name: string) => Promise<unknown>]> = [
    ['MutatingWebhookConfiguration', () => adm.listMutatingWebhookConfiguration({ labelSelector: o.selector }), (name) => adm.deleteMutatingWebhookConfiguration({ name })],
    ['ValidatingWebhookConfiguration', () => adm.listValidatingWebhookConfiguration({ labelSelector: o.selector }), (name) => adm.deleteValidatingWebhookConfiguration({ name })],
    ['ValidatingAdmissionPolicyBinding', () => adm.listValidatingAdmissionPolicyBinding({ labelSelector: o.selector }), (name) => adm.deleteValidatingAdmissionPolicyBinding({ name })],
    ['ValidatingAdmissionPolicy', () => adm.listValidatingAdmissionPolicy({ labelSelector: o.selector }), (name) => adm.deleteValidatingAdmissionPolicy({ name })],
  ];
  for (const [kind, list, remove] of kinds) {
    for (const obj of (await list()).items) {
      await remove(obj.metadata!.name!).catch(gone);
      done.push(`deleted ${kind} ${obj.metadata!.name}`);
    }
  }
  if (!o.keepRunning) {
    const deployments = (await apps.listNamespacedDeployment({ namespace: o.namespace, labelSelector: o.selector })).items;
    for (const d of deployments) {
      await apps.patchNamespacedDeploymentScale({ name: d.metadata!.name!, namespace: o.namespace, body: { spec: { replicas: 0 } } }, mergePatch).catch(gone);
      done.push(`scaled Deployment ${o.namespace}/${d.metadata!.name} to 0 (it was ${d.spec?.replicas ?? 1}): no controller acts`);
    }
  }
  if (done.length === 0) return `nothing labelled ${o.selector} found: no sickbay webhook or policy is installed\n`;
  return `${done.join('\n')}\nsickbay admits, guards and acts on nothing now; pods keep running. Reinstall with helm upgrade --install when it is fixed.\n`;
}
