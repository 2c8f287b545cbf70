// The public contract on Kubernetes objects: every label, annotation, taint and resource
// sickbay reads or writes, who sets it and what it means. docs/reference/labels-annotations.md
// is generated from this list (`npm run docs`), and a test holds it to the names the code uses.
import { ANN_DIAGNOSTICS_CONTAINER, ANN_DIAGNOSTICS_SCRIPT, ANN_HEAP_DUMP } from '../diagnostics/diagnostics-step.js';
import { LABEL_NODE_LOCK } from '../nodes/node-actions.js';
import {
  ANN_ARCHIVE,
  ANN_CHECKPOINT,
  ANN_CHECKPOINT_RESULT,
  ANN_AVOID_NODES,
  ANN_DIAGNOSTICS,
  ANN_EXPIRES_AT,
  ANN_FLIGHT_RECORDER,
  ANN_INJECTED,
  ANN_ISOLATE,
  ANN_MAX_QUARANTINED,
  ANN_ORIGINAL_LABELS,
  ANN_OWNER,
  ANN_PROBE_HTTP,
  ANN_QUARANTINED_AT,
  ANN_REASON,
  ANN_REGISTRY,
  ANN_RELEASE,
  ANN_SHIM_VOLUME_SIZE,
  annEntrypoint,
  LABEL_ALERTS,
  LABEL_INJECT,
  LABEL_INJECTION,
  LABEL_NODE_STATUS,
  LABEL_STATUS,
  NODE_TAINT_ISOLATED,
} from './names.js';

export interface PublicName {
  object: string;
  key: string;
  kind: 'label' | 'annotation' | 'taint' | 'custom resource';
  /** Who writes it: a person (or their manifests), sickbay, or both. */
  setBy: 'you' | 'sickbay' | 'you or a monitor';
  values: string;
  meaning: string;
}

export const PUBLIC_NAMES: PublicName[] = [
  { object: 'Namespace', key: LABEL_INJECTION, kind: 'label', setBy: 'you', values: '`enabled`', meaning: 'opt in: pods created here are injected and watched; sickbay acts only in such namespaces' },
  { object: 'Namespace', key: LABEL_ALERTS, kind: 'label', setBy: 'you', values: '`enabled`', meaning: 'alerts posted to `/alerts` may request quarantines of its pods (without it they are refused); never for bare pods' },
  { object: 'Pod', key: LABEL_INJECT, kind: 'label', setBy: 'you', values: '`false`', meaning: 'opt this pod out of injection and of every action' },
  { object: 'Pod', key: LABEL_STATUS, kind: 'label', setBy: 'sickbay', values: '`quarantined`', meaning: 'the pod is quarantined: out of its ReplicaSet and Services, kept for inspection. Only sickbay may set or remove it' },
  { object: 'Pod', key: ANN_ISOLATE, kind: 'annotation', setBy: 'you or a monitor', values: 'a reason', meaning: 'asks sickbay to quarantine this pod (`POST /alerts` writes it for an alert)' },
  { object: 'Pod', key: ANN_QUARANTINED_AT, kind: 'annotation', setBy: 'sickbay', values: 'RFC 3339 time', meaning: 'when the pod was quarantined' },
  { object: 'Pod', key: ANN_REASON, kind: 'annotation', setBy: 'sickbay', values: 'text', meaning: 'why it was quarantined' },
  { object: 'Pod', key: ANN_OWNER, kind: 'annotation', setBy: 'sickbay', values: '`<Kind>/<name>`', meaning: 'the workload it belonged to (`Deployment/<name>` for a ReplicaSet of a Deployment)' },
  { object: 'Pod', key: ANN_EXPIRES_AT, kind: 'annotation', setBy: 'sickbay', values: 'RFC 3339 time, or `never`', meaning: 'when sickbay deletes the quarantined pod (after archiving its scene, when an archive is set)' },
  { object: 'Pod', key: ANN_ORIGINAL_LABELS, kind: 'annotation', setBy: 'sickbay', values: 'JSON object', meaning: 'the labels sickbay removed' },
  { object: 'Pod', key: ANN_REGISTRY, kind: 'annotation', setBy: 'sickbay', values: 'JSON', meaning: 'what was removed from the service registry, and whether sickbay is still trying' },
  { object: 'Pod', key: ANN_DIAGNOSTICS, kind: 'annotation', setBy: 'sickbay', values: 'JSON', meaning: 'where the dumps are and how they ended' },
  { object: 'Pod', key: ANN_ARCHIVE, kind: 'annotation', setBy: 'sickbay', values: 'JSON', meaning: 'where the scene\'s bundle went (key, size), or why it could not go yet' },
  { object: 'Pod', key: ANN_RELEASE, kind: 'annotation', setBy: 'you', values: 'RFC 3339 time', meaning: 'ends the quarantine now: archived first, then deleted (`sickbay release` writes it)' },
  { object: 'Pod', key: ANN_INJECTED, kind: 'annotation', setBy: 'sickbay', values: '`true`', meaning: 'the webhook mutated this pod (a pod that has it is not mutated again)' },
  { object: 'Pod (template)', key: annEntrypoint('<container>'), kind: 'annotation', setBy: 'you', values: 'JSON array', meaning: 'the image\'s entrypoint, so a container without `command` can be supervised' },
  { object: 'Pod (template)', key: ANN_PROBE_HTTP, kind: 'annotation', setBy: 'you', values: '`<port>` or `<port>/<path>`', meaning: 'an HTTP readiness probe instead of the supervisor\'s' },
  { object: 'Pod (template)', key: ANN_SHIM_VOLUME_SIZE, kind: 'annotation', setBy: 'you', values: 'quantity (`1Gi`)', meaning: 'size limit of the pod\'s `/sickbay` volume, which holds the dumps (default `256Mi`)' },
  { object: 'Pod', key: ANN_CHECKPOINT_RESULT, kind: 'annotation', setBy: 'sickbay', values: 'JSON', meaning: 'each supervised container\'s checkpoint: its archive on the node, size and duration, or why there is none ([checkpoints](../checkpoints.md))' },
  { object: 'Pod (template) or Namespace', key: ANN_CHECKPOINT, kind: 'annotation', setBy: 'you', values: '`true`/`false`', meaning: 'at quarantine, the node\'s agent checkpoints each supervised container (CRIU, through the kubelet) before the dumps; needs `agent.checkpoints.enabled` (the pod\'s value wins)' },
  { object: 'Pod (template) or Namespace', key: ANN_FLIGHT_RECORDER, kind: 'annotation', setBy: 'you', values: '`true`/`false`', meaning: 'JVM pods keep a bounded continuous JFR recording, dumped with the scene (the pod\'s value wins)' },
  { object: 'Pod (template)', key: ANN_HEAP_DUMP, kind: 'annotation', setBy: 'you', values: '`true`', meaning: 'take a heap dump at quarantine too (when the volume has room)' },
  { object: 'Pod (template)', key: ANN_DIAGNOSTICS_SCRIPT, kind: 'annotation', setBy: 'you', values: 'path in the container', meaning: 'run this script at quarantine instead of the JVM dumps' },
  { object: 'Pod (template)', key: ANN_DIAGNOSTICS_CONTAINER, kind: 'annotation', setBy: 'you', values: 'container name', meaning: 'the container to dump (default: every supervised one)' },
  { object: 'Deployment', key: ANN_MAX_QUARANTINED, kind: 'annotation', setBy: 'you', values: 'integer', meaning: 'how many quarantined pods this workload keeps (default 1); failing pods beyond it are deleted' },
  { object: 'Deployment', key: ANN_AVOID_NODES, kind: 'annotation', setBy: 'sickbay', values: 'JSON object: node → RFC 3339 time', meaning: 'nodes its new pods must not be scheduled on (pods never became Ready there)' },
  { object: 'Node', key: NODE_TAINT_ISOLATED, kind: 'taint', setBy: 'sickbay', values: 'effect `NoExecute`', meaning: 'the node is isolated; quarantined pods and sickbay\'s agent tolerate it' },
  { object: 'Node', key: LABEL_NODE_STATUS, kind: 'label', setBy: 'sickbay', values: '`isolated`', meaning: 'set and removed with the taint' },
  { object: 'Lease (sickbay\'s namespace)', key: LABEL_NODE_LOCK, kind: 'label', setBy: 'sickbay', values: 'node name', meaning: 'a node\'s protection lock (`sickbay node protect`, or taken at isolation)' },
  { object: 'cluster', key: 'NodeHealth (sickbay.io/v1alpha1)', kind: 'custom resource', setBy: 'sickbay', values: 'named after the node', meaning: 'the node agent\'s heartbeat and check results' },
];
