// What sickbay may do, in one place: the playground applies these rules and the Helm
// chart's templates must grant the same (a test compares them). No wildcards; only the
// verbs each part uses.
import type { V1PolicyRule } from '@kubernetes/client-node';

/**
 * Exec into pods: the liveness hold (`probe --hold`, at every quarantine of a pod whose
 * liveness probe sickbay wrapped, so the kubelet does not restart the kept container) and
 * the diagnostics script. Granted whenever the controllers run, diagnostics on or off: the
 * hold is needed by every quarantine. An exec over websocket is a GET upgrade; the API
 * server checks get and create.
 */
export const EXEC_RULES: V1PolicyRule[] = [{ apiGroups: [''], resources: ['pods/exec'], verbs: ['get', 'create'] }];

/** Self-managed certificates: sickbay keeps its own webhook configurations' CA bundle in sync, and no others. */
export const caBundleSyncRules = (configurationName: string): V1PolicyRule[] => [
  { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'], resourceNames: [configurationName], verbs: ['get', 'patch'] },
];

/** `sickbay serve`: webhook caches, pod isolation, node isolation, leader election. */
const SERVE_BASE_RULES: V1PolicyRule[] = [
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch', 'delete'] },
  // Failing pods beyond a workload's quota go through the Eviction API (PodDisruptionBudgets hold).
  { apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] },
  { apiGroups: [''], resources: ['namespaces', 'services'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['get', 'list', 'watch'] },
  // avoid-nodes records, and restarts of Deployments whose pods escaped injection.
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch', 'patch'] },
  // Watched; removed when no agent runs on the node any more (the DaemonSet stopped covering
  // it); patched to ask a node's agent for checkpoints (spec.checkpoints).
  { apiGroups: ['sickbay.io'], resources: ['nodehealths'], verbs: ['get', 'list', 'watch', 'patch', 'delete'] },
];

/**
 * The scene archive: a bundle holds each container's log and the Events of the pod and
 * its workload (the rest it reads, sickbay reads already).
 */
export const ARCHIVE_RULES: V1PolicyRule[] = [
  { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
  { apiGroups: [''], resources: ['events'], verbs: ['list'] },
];

export function serveClusterRules(o: { caBundleSyncFor?: string; archive?: boolean } = {}): V1PolicyRule[] {
  return [...SERVE_BASE_RULES, ...EXEC_RULES, ...(o.archive ? ARCHIVE_RULES : []), ...(o.caBundleSyncFor ? caBundleSyncRules(o.caBundleSyncFor) : [])];
}

/** What a local install (tests, playground) grants: diagnostics on, the archive's reads, certificates handed in. */
export const SERVE_CLUSTER_RULES = serveClusterRules({ archive: true });

/**
 * Self-managed certificates generated in the cluster: the serving Secret, by name, and
 * creating it (a create cannot be limited to a name).
 */
export const servingSecretRules = (secretName: string): V1PolicyRule[] => [
  { apiGroups: [''], resources: ['secrets'], resourceNames: [secretName], verbs: ['get', 'update'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
];

/** In sickbay's own namespace: the controller Lease and the node protection locks. */
export const SERVE_NAMESPACE_RULES: V1PolicyRule[] = [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'create', 'update', 'patch', 'delete'] }];

/**
 * `sickbay agent`: watches its node (for its pressure conditions), writes its NodeHealth,
 * and with a Node condition of its own, patches its Node's status (the chart's agent
 * guard lets it change that one condition of its own node only).
 */
export function agentClusterRules(o: { nodeCondition: boolean; checkpoints: boolean }): V1PolicyRule[] {
  return [
    { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
    // Its own NodeHealth (a watch with a field selector): the checkpoints asked of it.
    { apiGroups: ['sickbay.io'], resources: ['nodehealths'], verbs: ['get', 'list', 'watch', 'create'] },
    { apiGroups: ['sickbay.io'], resources: ['nodehealths/status'], verbs: ['patch'] },
    ...(o.nodeCondition ? [{ apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] }] : []),
    // Checkpoints through its own node's kubelet (the kubelet asks the API server whether
    // the agent may create nodes/checkpoint of that node).
    ...(o.checkpoints ? [{ apiGroups: [''], resources: ['nodes/checkpoint'], verbs: ['create'] }] : []),
  ];
}

/** What a local install (tests, playground) grants the agent: the Node condition and checkpoints included. */
export const AGENT_CLUSTER_RULES = agentClusterRules({ nodeCondition: true, checkpoints: true });
