// What sickbay may do, in one place: the playground applies these rules and the Helm
// chart's templates must grant the same (a test compares them). No wildcards; only the
// verbs each part uses.
import type { V1PolicyRule } from '@kubernetes/client-node';

/** `sickbay serve`: webhook caches, pod isolation, node isolation, leader election. */
export const SERVE_CLUSTER_RULES: V1PolicyRule[] = [
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch', 'delete'] },
  // Diagnostics run the shim's script inside quarantined containers.
  // An exec over websocket is a GET upgrade; the API server checks get and create.
  { apiGroups: [''], resources: ['pods/exec'], verbs: ['get', 'create'] },
  { apiGroups: [''], resources: ['namespaces', 'services'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['get', 'list', 'watch'] },
  // avoid-nodes records, and restarts of Deployments whose pods escaped injection.
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch', 'patch'] },
  { apiGroups: ['sickbay.io'], resources: ['nodehealths'], verbs: ['get', 'list', 'watch'] },
];

/** In sickbay's own namespace: the controller Lease and the node protection locks. */
export const SERVE_NAMESPACE_RULES: V1PolicyRule[] = [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }];

/** `sickbay agent`: watches its node (for its pressure conditions), writes its NodeHealth. */
export const AGENT_CLUSTER_RULES: V1PolicyRule[] = [
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['sickbay.io'], resources: ['nodehealths'], verbs: ['get', 'create'] },
  { apiGroups: ['sickbay.io'], resources: ['nodehealths/status'], verbs: ['patch'] },
];
