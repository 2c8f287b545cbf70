// `sickbay status`: what sickbay holds, at a glance.
import { AppsV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { codeOf, errorText } from '../kube/api.js';
import { escapedInjection, unsupervisedContainers } from '../webhook/uninjected-pods.js';
import { LABEL_NODE_LOCK } from '../nodes/node-actions.js';
import { NODEHEALTH_GROUP, NODEHEALTH_PLURAL, NODEHEALTH_VERSION, type NodeHealth } from '../core/nodehealth.js';
import { annEntrypoint, LABEL_INJECTION, ANN_AVOID_NODES, ANN_OWNER, ANN_QUARANTINED_AT, ANN_REASON, LABEL_NODE_STATUS, LABEL_STATUS, STATUS_QUARANTINED } from '../core/names.js';

function age(at: string | Date | undefined, now = Date.now()): string {
  const t = at instanceof Date ? at.getTime() : Date.parse(at ?? '');
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

/** What `sickbay status` reports, as data (`-o json|yaml` prints it as it is). */
export interface StatusReport {
  quarantinedPods: { namespace: string; name: string; quarantinedAt?: string; owner?: string; reason?: string }[];
  isolatedNodes: { name: string; reason?: string; since?: string; lockedUntil?: string }[];
  protectedNodes: { name: string; until: string }[];
  nodeHealth: { reporting: number; unhealthy: { name: string; failing: string; lastHeartbeat?: string }[] } | { error: string };
  escapedInjection: { namespace: string; name: string; created?: string }[];
  unsupervisedContainers: { namespace: string; workload: string; containers: string[]; pods: number; fix: string }[];
  avoidingDeployments: { namespace: string; name: string; nodes: unknown }[];
}

const iso = (t: Date | string | undefined) => (t ? new Date(t).toISOString() : undefined);

/** `<Kind>/<name>` of a pod's workload, from its owner references (a ReplicaSet's Deployment by its name). */
function workloadOf(p: V1Pod): string {
  const ref = p.metadata?.ownerReferences?.find((r) => r.controller) ?? p.metadata?.ownerReferences?.[0];
  if (!ref) return `Pod/${p.metadata?.name}`;
  const hash = p.metadata?.labels?.['pod-template-hash'];
  if (ref.kind === 'ReplicaSet' && hash && ref.name.endsWith(`-${hash}`)) return `Deployment/${ref.name.slice(0, -hash.length - 1)}`;
  return `${ref.kind}/${ref.name}`;
}

export async function statusReport(kc: KubeConfig, namespace = 'sickbay-system'): Promise<StatusReport> {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const [pods, nodes, deployments, healths, locks, optedIn] = await Promise.all([
    core.listPodForAllNamespaces({ labelSelector: `${LABEL_STATUS}=${STATUS_QUARANTINED}` }),
    core.listNode({ labelSelector: `${LABEL_NODE_STATUS}=isolated` }),
    apps.listDeploymentForAllNamespaces(),
    // Without the CRD (no agents installed) or the rights to read it, say so and go on.
    (kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: NODEHEALTH_GROUP, version: NODEHEALTH_VERSION, plural: NODEHEALTH_PLURAL }) as Promise<{ items: NodeHealth[] }>).catch(
      (err) => new Error(codeOf(err) === 404 ? 'the NodeHealth CRD is not installed' : errorText(err)),
    ),
    kc.makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace, labelSelector: `${LABEL_NODE_LOCK}=true` }).catch((err) => new Error(errorText(err))),
    core.listNamespace({ labelSelector: `${LABEL_INJECTION}=enabled` }),
  ]);
  const lockUntil = new Map<string, number>();
  if (!(locks instanceof Error)) {
    for (const l of locks.items) {
      const node = l.metadata?.annotations?.['sickbay.io/node'];
      const renew = l.spec?.renewTime ? new Date(l.spec.renewTime).getTime() : 0;
      if (node) lockUntil.set(node, renew + (l.spec?.leaseDurationSeconds ?? 0) * 1000);
    }
  }
  const now = Date.now();
  const optedInPods = (await Promise.all(optedIn.items.map((n) => core.listNamespacedPod({ namespace: n.metadata!.name! })))).flatMap((l) => l.items);
  const unsupervised = new Map<string, StatusReport['unsupervisedContainers'][number]>();
  for (const p of optedInPods) {
    const names = unsupervisedContainers(p);
    if (!names.length) continue;
    const key = `${p.metadata?.namespace}/${workloadOf(p)}`;
    const entry = unsupervised.get(key) ?? { namespace: p.metadata!.namespace!, workload: workloadOf(p), containers: [], pods: 0, fix: '' };
    entry.pods++;
    for (const n of names) if (!entry.containers.includes(n)) entry.containers.push(n);
    entry.fix = entry.containers.map((c) => `${annEntrypoint(c)}='["<entrypoint>"]'`).join(', ');
    unsupervised.set(key, entry);
  }
  return {
    quarantinedPods: pods.items.map((p) => {
      const a = p.metadata?.annotations ?? {};
      return { namespace: p.metadata!.namespace!, name: p.metadata!.name!, quarantinedAt: a[ANN_QUARANTINED_AT], owner: a[ANN_OWNER], reason: a[ANN_REASON] };
    }),
    isolatedNodes: nodes.items.map((n) => {
      const taint = n.spec?.taints?.find((x) => x.key === 'sickbay.io/isolated');
      const until = lockUntil.get(n.metadata?.name ?? '');
      return { name: n.metadata!.name!, reason: taint?.value, since: iso(taint?.timeAdded), lockedUntil: until && until > now ? iso(new Date(until)) : undefined };
    }),
    protectedNodes: [...lockUntil].filter(([node, until]) => until > now && !nodes.items.some((n) => n.metadata?.name === node)).map(([name, until]) => ({ name, until: iso(new Date(until))! })),
    nodeHealth: healths instanceof Error
      ? { error: healths.message }
      : {
          reporting: healths.items.length,
          unhealthy: healths.items.filter((h) => h.status?.healthy === false).map((h) => ({ name: h.metadata!.name!, failing: h.status?.failing || '?', lastHeartbeat: h.status?.heartbeatTime })),
        },
    escapedInjection: optedInPods.filter((p) => escapedInjection(p, namespace)).map((p) => ({ namespace: p.metadata!.namespace!, name: p.metadata!.name!, created: iso(p.metadata?.creationTimestamp) })),
    unsupervisedContainers: [...unsupervised.values()],
    avoidingDeployments: deployments.items
      .filter((d) => d.metadata?.annotations?.[ANN_AVOID_NODES])
      .map((d) => {
        const raw = d.metadata!.annotations![ANN_AVOID_NODES]!;
        let nodes: unknown = raw;
        try {
          nodes = JSON.parse(raw);
        } catch {
          // shown as written
        }
        return { namespace: d.metadata!.namespace!, name: d.metadata!.name!, nodes };
      }),
  };
}

/** The report for a terminal. */
export function formatStatus(r: StatusReport, now = Date.now()): string {
  const out: string[] = [];
  out.push(`Quarantined pods (${r.quarantinedPods.length}):`);
  if (r.quarantinedPods.length) {
    const rows = [['NAMESPACE/POD', 'AGE', 'OWNER', 'REASON']];
    for (const p of r.quarantinedPods) rows.push([`${p.namespace}/${p.name}`, age(p.quarantinedAt, now), p.owner ?? '-', p.reason ?? '-']);
    out.push(table(rows));
  }
  out.push('', `Isolated nodes (${r.isolatedNodes.length}):`);
  for (const n of r.isolatedNodes) out.push(`  ${printable(n.name)}   ${printable(n.reason)}${n.since ? `, ${age(n.since, now)} ago` : ''}${n.lockedUntil ? `, locked until ${n.lockedUntil}` : ''}`);
  if (r.protectedNodes.length) {
    out.push('', `Protected nodes (${r.protectedNodes.length}):`);
    for (const n of r.protectedNodes) out.push(`  ${printable(n.name)}   until ${n.until}`);
  }
  if ('error' in r.nodeHealth) out.push('', `Node health: unknown (${printable(r.nodeHealth.error)})`);
  else {
    out.push('', `Node health: ${r.nodeHealth.reporting} reporting, ${r.nodeHealth.unhealthy.length} unhealthy`);
    for (const h of r.nodeHealth.unhealthy) out.push(`  ${printable(h.name)}   failing: ${printable(h.failing)}, last heartbeat ${age(h.lastHeartbeat, now)} ago`);
  }
  out.push('', `Pods that escaped injection (${r.escapedInjection.length}):`);
  for (const p of r.escapedInjection) out.push(`  ${printable(p.namespace)}/${printable(p.name)}   created ${age(p.created, now)} ago`);
  out.push('', `Workloads with containers the supervisor cannot wrap (${r.unsupervisedContainers.length}; no command, so a crash loses the scene):`);
  for (const w of r.unsupervisedContainers) out.push(`  ${printable(w.namespace)}/${printable(w.workload)}   ${w.containers.map(printable).join(', ')} (${w.pods} pods); fix: annotate the pod template ${printable(w.fix)}`);
  out.push('', `Deployments avoiding nodes (${r.avoidingDeployments.length}):`);
  for (const d of r.avoidingDeployments) out.push(`  ${printable(d.namespace)}/${printable(d.name)}: ${printable(typeof d.nodes === 'string' ? d.nodes : JSON.stringify(d.nodes))}`);
  return `${out.join('\n')}\n`;
}

export async function status(kc: KubeConfig, namespace = 'sickbay-system'): Promise<string> {
  return formatStatus(await statusReport(kc, namespace));
}

/** The report limited to one namespace's pods and workloads (`status -n`); nodes stay whole. */
export function inNamespace(r: StatusReport, namespace: string): StatusReport {
  const here = <T extends { namespace: string }>(xs: T[]) => xs.filter((x) => x.namespace === namespace);
  return { ...r, quarantinedPods: here(r.quarantinedPods), escapedInjection: here(r.escapedInjection), unsupervisedContainers: here(r.unsupervisedContainers), avoidingDeployments: here(r.avoidingDeployments) };
}
