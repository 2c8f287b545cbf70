// Every Event reason sickbay writes, with its type, the object it lands on and what it
// means. `EventRecorder.record` takes only these (the compiler holds every call to the
// list), and docs/reference/events.md is generated from it (`npm run docs`).

type EventType = 'Normal' | 'Warning';

export interface EventReasonDoc {
  type: EventType | 'Normal or Warning';
  /** The kinds of object it is recorded on. */
  on: string;
  meaning: string;
}

export const EVENT_REASONS = {
  // Pods: quarantine and its end.
  Quarantined: { type: 'Warning', on: 'Pod', meaning: 'taken out of service (selector labels removed, `sickbay.io/status=quarantined`) and kept for inspection; the message says why' },
  PodQuarantined: { type: 'Warning', on: 'workload', meaning: 'one of its pods was quarantined; a replacement is starting' },
  FailingPodDeleted: { type: 'Normal or Warning', on: 'Pod, workload', meaning: 'a failing pod beyond the workload\'s quota of quarantined pods was deleted (evicted, or archived and deleted) so a replacement starts' },
  KeptForArchive: { type: 'Warning', on: 'Pod, workload', meaning: 'a failing pod beyond the quota is out of service and kept for `SICKBAY_ARCHIVE_OVER_QUOTA_KEEP` so its scene can be archived before it is deleted' },
  EvictionRefused: { type: 'Warning', on: 'Pod', meaning: 'the pod\'s PodDisruptionBudget allows no eviction now; sickbay tries again later' },
  QuarantineExpired: { type: 'Warning', on: 'Pod', meaning: 'the quarantine reached its TTL (`sickbay.io/expires-at`); the pod is deleted' },
  QuarantineReleased: { type: 'Warning', on: 'Pod', meaning: 'a person released the quarantine (`sickbay release`); the pod is deleted' },
  QuarantineSkipped: { type: 'Warning', on: 'Pod, workload', meaning: 'the pod is failing but sickbay does not quarantine it (an owner it does not handle, such as a Job or a StatefulSet); the message says why' },
  SystemicFailure: { type: 'Warning', on: 'workload', meaning: 'too many of the workload\'s pods fail at once (a bad config, a dependency down): sickbay keeps the scenes it has and deletes nothing' },
  WorkloadBackOff: { type: 'Warning', on: 'workload', meaning: 'sickbay acted on this workload too often in its window; it stops acting on it until the window has passed' },
  ReplacementRefused: { type: 'Warning', on: 'workload', meaning: 'the ReplicaSet cannot create the replacement of a quarantined pod (a ResourceQuota the scene still counts against, a LimitRange, a webhook): the workload is short; the scene is kept, and the message says what frees the room' },
  WaitingForNode: { type: 'Normal', on: 'Pod', meaning: 'the pod is NotReady because its node is (NotReady, unreachable, isolated): left to the node\'s verdict' },
  // The scene archive.
  SceneArchived: { type: 'Normal', on: 'Pod', meaning: 'the scene\'s bundle was written to the archive (the message gives its key); the pod is being deleted' },
  ArchiveFailed: { type: 'Warning', on: 'Pod', meaning: 'the scene could not be archived; the pod is kept and the archive retried (at most until `SICKBAY_ARCHIVE_MAX_DELAY`)' },
  DeletedWithoutArchive: { type: 'Warning', on: 'Pod', meaning: 'the archive failed until `SICKBAY_ARCHIVE_MAX_DELAY` passed; the pod was deleted with its scene' },
  // After a quarantine.
  CheckpointTaken: { type: 'Normal', on: 'Pod', meaning: 'a forensic checkpoint (CRIU) of each supervised container was taken by the node\'s agent before the dumps; the message gives each archive\'s place on the node and size (`sickbay.io/checkpoint-result`)' },
  CheckpointFailed: { type: 'Warning', on: 'Pod', meaning: 'the checkpoint asked for (`sickbay.io/checkpoint`) was not taken: the kubelet or runtime refused, no agent answered, or it timed out; the quarantine stands and the dumps run' },
  DiagnosticsCaptured: { type: 'Normal', on: 'Pod', meaning: 'the dump scripts ran in the quarantined container; the message says where the dumps are' },
  DiagnosticsSkipped: { type: 'Normal', on: 'Pod', meaning: 'no dump was taken (no supervised container, or nothing to dump)' },
  DiagnosticsFailed: { type: 'Warning', on: 'Pod', meaning: 'the dump scripts failed or timed out; the quarantine stands' },
  Deregistered: { type: 'Normal', on: 'Pod', meaning: 'the pod\'s entries were removed from the service registry (ZooKeeper), or none was found; sickbay keeps watching' },
  Reregistered: { type: 'Normal', on: 'Pod', meaning: 'the quarantined app registered itself again; the entries were removed again' },
  DeregistrationFailed: { type: 'Warning', on: 'Pod', meaning: 'the service registry cannot be reached; sickbay retries (the quarantine stands)' },
  DeregistrationSkipped: { type: 'Warning', on: 'Pod', meaning: 'the pod declares no service port, so its registry entries cannot be found' },
  // Pods that never become Ready.
  NeverReadyDeleted: { type: 'Warning', on: 'Pod', meaning: 'the pod never became Ready and its node is to blame; deleted so a replacement starts elsewhere' },
  NodeAvoided: { type: 'Warning', on: 'Deployment', meaning: 'new pods of this Deployment avoid a node where a pod never became Ready (`sickbay.io/avoid-nodes`)' },
  NeverReadyAppFault: { type: 'Warning', on: 'Pod', meaning: 'the pod never became Ready through the app\'s own fault: kept as the scene, the node not blamed' },
  ImagePullNotNode: { type: 'Warning', on: 'Pod', meaning: 'the pod cannot pull an image: not the node\'s fault, so the node is not avoided' },
  ShimImageUnavailable: { type: 'Warning', on: 'Pod, Deployment', meaning: 'the shim\'s image cannot be pulled (a registry or pull-secret problem of the installation, never the node\'s)' },
  AvoidListCleared: { type: 'Warning', on: 'Deployment', meaning: 'avoiding the recorded nodes would leave no node for the pods; the record was cleared' },
  BadAvoidNodes: { type: 'Warning', on: 'Deployment', meaning: 'the `sickbay.io/avoid-nodes` annotation cannot be read; it is ignored' },
  // Injection.
  NotInjected: { type: 'Warning', on: 'Pod', meaning: 'the pod runs without the shim (the webhook was unreachable, or the namespace opted in later)' },
  ContainerNotSupervised: { type: 'Warning', on: 'workload', meaning: 'a container runs without the supervisor (no `command` and no entrypoint annotation); the message names the annotation that fixes it' },
  RestartedForInjection: { type: 'Normal', on: 'Deployment', meaning: 'restarted so its pods are created again with the shim (`controllers.repair.restartDeployments`)' },
  // Nodes.
  NodeIsolated: { type: 'Warning', on: 'Node', meaning: 'tainted `sickbay.io/isolated:NoExecute` and labelled; the message gives the failing check' },
  NodeRestored: { type: 'Normal', on: 'Node', meaning: 'the isolation was lifted (healthy for the recovery period, or `sickbay node restore`)' },
  IsolationSkipped: { type: 'Warning', on: 'Node', meaning: 'the node is faulty but protected by its lock; not isolated' },
  IsolationDeferred: { type: 'Warning', on: 'Node', meaning: 'the node is faulty but the isolation budget is spent' },
  IsolationHeld: { type: 'Warning', on: 'Node', meaning: 'the node is faulty but too few nodes of its group are healthy; none is isolated' },
  IsolationLockReleased: { type: 'Normal', on: 'Node', meaning: 'an earlier leader took the protection lock but stopped before tainting; the lock was given back' },
  AgentDown: { type: 'Warning', on: 'Node', meaning: 'no heartbeat from the node\'s agent while nothing says the node is at fault: the agent is away, the node is not isolated' },
  NodeHealthRemoved: { type: 'Normal', on: 'Node', meaning: 'no agent pod has run on the node for 10 minutes; its stale NodeHealth was removed' },
  NodeIsolationSuspended: { type: 'Warning', on: 'Lease (sickbay\'s)', meaning: 'too many heartbeats are missing, or too few nodes are healthy: no node is isolated until that changes' },
  NodeIsolationResumed: { type: 'Normal', on: 'Lease (sickbay\'s)', meaning: 'node isolation resumes' },
  Protected: { type: 'Normal', on: 'Node', meaning: 'a person set the node\'s protection lock (`sickbay node protect`)' },
  ProtectionLifted: { type: 'Normal', on: 'Node', meaning: 'a person lifted the node\'s protection lock' },
  // Dry run (`dryRun=true`): what sickbay would have done; nothing else is written.
  WouldQuarantine: { type: 'Warning', on: 'Pod', meaning: 'dry run: would have quarantined the pod' },
  WouldDelete: { type: 'Normal or Warning', on: 'Pod', meaning: 'dry run: would have deleted the pod' },
  WouldRestart: { type: 'Normal', on: 'Deployment', meaning: 'dry run: would have restarted the Deployment so its pods are injected' },
  WouldIsolate: { type: 'Normal', on: 'Node', meaning: 'dry run: would have isolated the node' },
  WouldRestore: { type: 'Normal', on: 'Node', meaning: 'dry run: would have restored the node' },
  WouldReleaseLock: { type: 'Normal', on: 'Node', meaning: 'dry run: would have given back a lock an earlier leader left' },
  WouldRemoveNodeHealth: { type: 'Normal', on: 'Node', meaning: 'dry run: would have removed a stale NodeHealth' },
} as const satisfies Record<string, EventReasonDoc>;

export type EventReason = keyof typeof EVENT_REASONS;
