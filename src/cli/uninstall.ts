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
  // The webhooks first: they are what other writes wait on.
  for (const w of (await adm.listMutatingWebhookConfiguration({ labelSelector: o.selector })).items) {
    await adm.deleteMutatingWebhookConfiguration({ name: w.metadata!.name! }).catch(gone);
    done.push(`deleted MutatingWebhookConfiguration ${w.metadata!.name}`);
  }
  for (const w of (await adm.listValidatingWebhookConfiguration({ labelSelector: o.selector })).items) {
    await adm.deleteValidatingWebhookConfiguration({ name: w.metadata!.name! }).catch(gone);
    done.push(`deleted ValidatingWebhookConfiguration ${w.metadata!.name}`);
  }
  // A binding is what puts a policy in force: bindings, then the policies.
  for (const b of (await adm.listValidatingAdmissionPolicyBinding({ labelSelector: o.selector })).items) {
    await adm.deleteValidatingAdmissionPolicyBinding({ name: b.metadata!.name! }).catch(gone);
    done.push(`deleted ValidatingAdmissionPolicyBinding ${b.metadata!.name}`);
  }
  for (const p of (await adm.listValidatingAdmissionPolicy({ labelSelector: o.selector })).items) {
    await adm.deleteValidatingAdmissionPolicy({ name: p.metadata!.name! }).catch(gone);
    done.push(`deleted ValidatingAdmissionPolicy ${p.metadata!.name}`);
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
