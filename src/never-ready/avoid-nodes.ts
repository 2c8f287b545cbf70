// Keeping new pods off nodes where their predecessors never became Ready: the record on
// the Deployment, which nodes could take a pod, and the affinity merge. Pure functions.
import type { V1Node, V1NodeSelectorRequirement, V1NodeSelectorTerm, V1Pod, V1Toleration } from '@kubernetes/client-node';
import { isNodeReady } from '../kube/pods.js';

/** `sickbay.io/avoid-nodes`: node name -> RFC 3339 time recorded. */
export type AvoidRecord = Record<string, string>;

export function parseAvoidRecord(raw: string | undefined): { record: AvoidRecord; error?: string } {
  if (raw === undefined || raw === '') return { record: {} };
  try {
    const v: unknown = JSON.parse(raw);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    const record: AvoidRecord = {};
    for (const [node, at] of Object.entries(v)) {
      if (typeof at !== 'string' || Number.isNaN(Date.parse(at))) throw new Error(`the time for ${JSON.stringify(node)} is not an RFC 3339 time`);
      record[node] = at;
    }
    return { record };
  } catch (err) {
    return { record: {}, error: `sickbay.io/avoid-nodes must be a JSON object of node -> RFC 3339 time (${(err as Error).message}); ignored` };
  }
}

export function liveEntries(record: AvoidRecord, now: number, ttlMs: number): string[] {
  return Object.entries(record)
    .filter(([, at]) => Date.parse(at) + ttlMs > now)
    .map(([node]) => node)
    .sort();
}

function tolerates(tolerations: V1Toleration[], taint: { key: string; value?: string; effect: string }): boolean {
  return tolerations.some((t) => {
    if (t.effect && t.effect !== taint.effect) return false;
    if (t.operator === 'Exists') return !t.key || t.key === taint.key;
    return t.key === taint.key && (t.value ?? '') === (taint.value ?? '');
  });
}

function requirementMatches(r: V1NodeSelectorRequirement, value: string | undefined): boolean {
  const has = value !== undefined;
  switch (r.operator) {
    case 'In':
      return has && (r.values ?? []).includes(value);
    case 'NotIn':
      return !has || !(r.values ?? []).includes(value);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'Gt':
      return has && Number(value) > Number(r.values?.[0]);
    case 'Lt':
      return has && Number(value) < Number(r.values?.[0]);
    default:
      return false;
  }
}

function termMatches(term: V1NodeSelectorTerm, node: V1Node): boolean {
  const labels = node.metadata?.labels ?? {};
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false; // an empty term matches no node
  return exprs.every((r) => requirementMatches(r, labels[r.key])) && fields.every((r) => r.key === 'metadata.name' && requirementMatches(r, node.metadata?.name));
}

/** Nodes the scheduler could place the pod on: ready, schedulable, taints tolerated, selector and required affinity matched. */
export function feasibleNodes(pod: V1Pod, nodes: V1Node[]): string[] {
  const tolerations = pod.spec?.tolerations ?? [];
  const selector = pod.spec?.nodeSelector ?? {};
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  return nodes
    .filter(isNodeReady)
    .filter((n) => !n.spec?.unschedulable)
    .filter((n) => (n.spec?.taints ?? []).every((t) => t.effect === 'PreferNoSchedule' || tolerates(tolerations, t)))
    .filter((n) => Object.entries(selector).every(([k, v]) => n.metadata?.labels?.[k] === v))
    .filter((n) => !terms?.length || terms.some((t) => termMatches(t, n)))
    .map((n) => n.metadata!.name!)
    .sort();
}

const EXCLUSION_KEY = 'metadata.name';

/**
 * Adds "not on these nodes" to the pod's required node affinity, copy-on-write. Terms
 * are ORed, so the exclusion goes into every existing term; with none, it is the only
 * term. Running it again with the same nodes changes nothing.
 */
export function excludeNodes(pod: V1Pod, avoid: string[]): V1Pod {
  if (avoid.length === 0) return pod;
  const exclusion: V1NodeSelectorRequirement = { key: EXCLUSION_KEY, operator: 'NotIn', values: [...avoid].sort() };
  const affinity = pod.spec?.affinity ?? {};
  const nodeAffinity = affinity.nodeAffinity ?? {};
  const required = nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  const terms: V1NodeSelectorTerm[] = required?.nodeSelectorTerms?.length ? required.nodeSelectorTerms : [{}];
  const merged = terms.map((term) => {
    const fields = term.matchFields ?? [];
    const same = fields.some((f) => f.key === EXCLUSION_KEY && f.operator === 'NotIn' && JSON.stringify(f.values) === JSON.stringify(exclusion.values));
    return same ? term : { ...term, matchFields: [...fields, exclusion] };
  });
  return {
    ...pod,
    spec: {
      ...pod.spec!,
      affinity: { ...affinity, nodeAffinity: { ...nodeAffinity, requiredDuringSchedulingIgnoredDuringExecution: { ...required, nodeSelectorTerms: merged } } },
    },
  };
}
