// `sickbay release`: the way to end a quarantine now (the pod is deleted; its workload
// replaced it when it was quarantined).
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { errorText } from '../kube/api.js';
import { LABEL_STATUS, STATUS_QUARANTINED } from '../core/names.js';

export async function release(kc: KubeConfig, ref: string): Promise<string> {
  const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)$/.exec(ref);
  if (!m) throw new Error(`expected <namespace>/<pod>, got ${JSON.stringify(ref)}`);
  const [, namespace, name] = m as unknown as [string, string, string];
  const core = kc.makeApiClient(CoreV1Api);
  let pod;
  try {
    pod = await core.readNamespacedPod({ name, namespace });
  } catch (err) {
    throw new Error(`cannot read pod ${ref}: ${errorText(err)}`);
  }
  if (pod.metadata?.labels?.[LABEL_STATUS] !== STATUS_QUARANTINED) throw new Error(`pod ${ref} is not quarantined by sickbay; nothing to release`);
  try {
    await core.deleteNamespacedPod({ name, namespace, body: { preconditions: { uid: pod.metadata?.uid } } });
  } catch (err) {
    throw new Error(`cannot delete pod ${ref}: ${errorText(err)}`);
  }
  return `released ${ref}: the pod is being deleted (its workload replaced it when it was quarantined)\n`;
}
