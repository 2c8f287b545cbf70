// `sickbay status` and `sickbay release`: what sickbay holds, at a glance, and the way
// to end a quarantine.
import { AppsV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { codeOf, errorText } from '../kube/api.js';
import { escapedInjection } from '../controllers/uninjected-pods.js';
import { LABEL_NODE_LOCK } from '../node/node-actions.js';
import { NODEHEALTH_GROUP, NODEHEALTH_PLURAL, NODEHEALTH_VERSION, type NodeHealth } from '../node/nodehealth.js';
import { LABEL_INJECTION, ANN_AVOID_NODES, ANN_OWNER, ANN_QUARANTINED_AT, ANN_REASON, LABEL_NODE_STATUS, LABEL_STATUS, STATUS_QUARANTINED } from '../names.js';

function age(iso: string | undefined, now = Date.now()): string {
  const t = Date.parse(iso ?? '');
  if (Number.isNaN(t)) return '?';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/**
 * What the cluster says, made safe for a terminal: control characters (escape sequences,
 * carriage returns, newlines that would forge a line) and bidirectional overrides are
 * shown as \u escapes. A reason comes from an alert or an annotation anyone may write.
 */
export function printable(v: unknown): string {
  return String(v ?? '').replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function table(rows: string[][]): string {
  rows = rows.map((r) => r.map(printable));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')).join('\n');
}

export async function status(kc: KubeConfig, namespace = 'sickbay-system'): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const [pods, nodes, deployments, healths, locks] = await Promise.all([
    core.listPodForAllNamespaces({ labelSelector: `${LABEL_STATUS}=${STATUS_QUARANTINED}` }),
    core.listNode({ labelSelector: `${LABEL_NODE_STATUS}=isolated` }),
    apps.listDeploymentForAllNamespaces(),
    // Without the CRD (no agents installed) or the rights to read it, say so and go on.
    (kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: NODEHEALTH_GROUP, version: NODEHEALTH_VERSION, plural: NODEHEALTH_PLURAL }) as Promise<{ items: NodeHealth[] }>).catch(
      (err) => new Error(codeOf(err) === 404 ? 'the NodeHealth CRD is not installed' : errorText(err)),
    ),
    kc.makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace, labelSelector: `${LABEL_NODE_LOCK}=true` }).catch((err) => new Error(errorText(err))),
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
  const lockUntil = new Map<string, number>();
  if (!(locks instanceof Error)) {
    for (const l of locks.items) {
      const node = l.metadata?.annotations?.['sickbay.io/node'];
      const renew = l.spec?.renewTime ? new Date(l.spec.renewTime).getTime() : 0;
      if (node) lockUntil.set(node, renew + (l.spec?.leaseDurationSeconds ?? 0) * 1000);
    }
  }
  const now = Date.now();
  out.push('', `Isolated nodes (${nodes.items.length}):`);
  for (const n of nodes.items) {
    const taint = n.spec?.taints?.find((x) => x.key === 'sickbay.io/isolated');
    const until = lockUntil.get(n.metadata?.name ?? '');
    out.push(`  ${printable(n.metadata?.name)}   ${printable(taint?.value)}${taint?.timeAdded ? `, ${age(new Date(taint.timeAdded).toISOString())} ago` : ''}${until && until > now ? `, locked until ${new Date(until).toISOString()}` : ''}`);
  }
  const protectedNodes = [...lockUntil].filter(([node, until]) => until > now && !nodes.items.some((n) => n.metadata?.name === node));
  if (protectedNodes.length) {
    out.push('', `Protected nodes (${protectedNodes.length}):`);
    for (const [node, until] of protectedNodes) out.push(`  ${printable(node)}   until ${new Date(until).toISOString()}`);
  }
  if (healths instanceof Error) out.push('', `Node health: unknown (${printable(healths.message)})`);
  else {
    const unhealthy = healths.items.filter((h) => h.status?.healthy === false);
    out.push('', `Node health: ${healths.items.length} reporting, ${unhealthy.length} unhealthy`);
    for (const h of unhealthy) out.push(`  ${printable(h.metadata?.name)}   failing: ${printable(h.status?.failing || '?')}, last heartbeat ${age(h.status?.heartbeatTime)} ago`);
  }
  const optedIn = await core.listNamespace({ labelSelector: `${LABEL_INJECTION}=enabled` });
  const escaped = (await Promise.all(optedIn.items.map((n) => core.listNamespacedPod({ namespace: n.metadata!.name! })))).flatMap((l) => l.items).filter((p) => escapedInjection(p, namespace));
  out.push('', `Pods that escaped injection (${escaped.length}):`);
  for (const p of escaped) out.push(`  ${printable(p.metadata?.namespace)}/${printable(p.metadata?.name)}   created ${age(p.metadata?.creationTimestamp ? new Date(p.metadata.creationTimestamp).toISOString() : undefined)} ago`);
  const avoid = deployments.items.filter((d) => d.metadata?.annotations?.[ANN_AVOID_NODES]);
  out.push('', `Deployments avoiding nodes (${avoid.length}):`);
  for (const d of avoid) out.push(`  ${printable(d.metadata?.namespace)}/${printable(d.metadata?.name)}: ${printable(d.metadata?.annotations?.[ANN_AVOID_NODES])}`);
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
