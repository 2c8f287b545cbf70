// `sickbay inject --kubeconfig`: the namespaces' annotations the webhook reads at admission.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { codeOf } from '../kube/api.js';

/** Each namespace's annotations; a namespace that does not exist has none (the webhook would see none either). */
export async function readNamespaceAnnotations(kc: KubeConfig, names: string[]): Promise<Map<string, Record<string, string>>> {
  const core = kc.makeApiClient(CoreV1Api);
  const out = new Map<string, Record<string, string>>();
  for (const name of names) {
    try {
      out.set(name, (await core.readNamespace({ name })).metadata?.annotations ?? {});
    } catch (err) {
      if (codeOf(err) !== 404) throw err;
    }
  }
  return out;
}
