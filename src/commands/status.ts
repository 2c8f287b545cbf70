// `sickbay status` and `sickbay release`: what sickbay holds, at a glance, and the way
// to end a quarantine.
import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { errorText } from '../kube/api.js';
import { ANN_AVOID_NODES, ANN_OWNER, ANN_QUARANTINED_AT, ANN_REASON, LABEL_NODE_STATUS, LABEL_STATUS, STATUS_QUARANTINED } from '../names.js';

function age(iso: string | undefined, now = Date.now()): string {
  const t = Date.parse(iso ?? '');
  if (Number.isNaN(t)) return '?';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')).join('\n');
}

export async function status(kc: KubeConfig): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const [pods, nodes, deployments] = await Promise.all([
    core.listPodForAllNamespaces({ labelSelector: `${LABEL_STATUS}=${STATUS_QUARANTINED}` }),
    core.listNode({ labelSelector: `${LABEL_NODE_STATUS}=isolated` }),
    apps.listDeploymentForAllNamespaces(),
  ]);
  const out: string[] = [];
  out.push(`Quarantined pods (${pods.items.length}):`);
  if (pods.items.length) {
    const rows = [['NAMESPACE/POD', 'AGE', 'OWNER', 'REASON']];
    for (const p of pods.items) {
      const a = p.metadata?.annotations ?? {};
      rows.push([`${p.metadata?.namespace}/${p.metadata?.name}`, age(a[ANN_QUARANTINED_AT]), a[ANN_OWNER] ?? '-', a[ANN_REASON] ?? '-']);
    }
    out.push(table(rows));
  }
  out.push('', `Isolated nodes (${nodes.items.length}):`);
  for (const n of nodes.items) out.push(`  ${n.metadata?.name}`);
  const avoid = deployments.items.filter((d) => d.metadata?.annotations?.[ANN_AVOID_NODES]);
  out.push('', `Deployments avoiding nodes (${avoid.length}):`);
  for (const d of avoid) out.push(`  ${d.metadata?.namespace}/${d.metadata?.name}: ${d.metadata?.annotations?.[ANN_AVOID_NODES]}`);
  return `${out.join('\n')}\n`;
}

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
