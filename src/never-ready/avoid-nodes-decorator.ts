// The webhook's part of node avoidance: a new pod of a Deployment with an avoid-node
// record gets a required node affinity excluding those nodes, unless that would leave no
// node able to take it. Everything comes from informer caches: no API call on the
// admission path; caches not synced yet means nothing is added (fail open).
import type { V1Pod } from '@kubernetes/client-node';
import type { ClusterCache } from '../kube/cluster-cache.js';
import { excludeNodes, feasibleNodes, liveEntries, parseAvoidRecord } from './avoid-nodes.js';
import { ANN_AVOID_NODES } from '../core/names.js';

/** The webhook calls it with each pod it injects (ReviewDeps.decoratePod in webhook/review.ts), and the request's namespace. */
export function avoidNodesDecorator(cache: ClusterCache, ttlMs: number) {
  return (pod: V1Pod, req: { namespace?: string }, warnings: string[]): V1Pod => {
    if (cache.notSynced()) return pod;
    const deployment = cache.deploymentOf(pod, pod.metadata?.namespace ?? req.namespace ?? '');
    const raw = deployment?.metadata?.annotations?.[ANN_AVOID_NODES];
    if (raw === undefined) return pod;
    const { record, error } = parseAvoidRecord(raw);
    if (error) {
      warnings.push(`sickbay: ${error}`);
      return pod;
    }
    const avoid = liveEntries(record, Date.now(), ttlMs);
    if (avoid.length === 0) return pod;
    const remaining = feasibleNodes(pod, [...cache.nodes.list()]).filter((n) => !avoid.includes(n));
    if (remaining.length === 0) {
      warnings.push(`sickbay: avoiding ${avoid.join(', ')} would leave no node for this pod; not avoiding any`);
      return pod;
    }
    return excludeNodes(pod, avoid);
  };
}
